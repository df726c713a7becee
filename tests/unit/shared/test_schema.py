from shared.schema import OUTPUT, rendered


def test_the_committed_event_contract_matches_the_models() -> None:
    stale = [
        name
        for name, text in rendered().items()
        if not (OUTPUT / name).exists() or (OUTPUT / name).read_text() != text
    ]
    assert stale == [], "run `python -m shared.schema` and commit docs/events/"
