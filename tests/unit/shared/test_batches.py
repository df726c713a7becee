"""`shared.storage.batches.texts`: a column of texts bound as one parameter (the round trip
through PostgreSQL: tests/integration/core/test_batches.py)."""

import pytest

from shared.storage.batches import texts


def test_texts_are_each_followed_by_a_separator_and_none_is_the_null_mark() -> None:
    assert texts(["a", None, ""]) == "a\x1e\x1d\x1e\x1e"
    assert texts([""]) == "\x1e"
    assert texts([]) is None


@pytest.mark.parametrize("held", ["a\x1eb", "\x1d", "x\x1dy"])
def test_a_text_holding_a_separator_is_refused(held: str) -> None:
    with pytest.raises(ValueError, match="separator"):
        texts(["ok", held])
