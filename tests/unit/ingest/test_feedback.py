"""`POST /v1/feedback`'s body: each bad field is refused by name, the score
fits the kind, the comment is bounded and printable; and the erasure's feedback tombstones."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.ingest.api.schemas import FeedbackIn
from services.ingest.usecases.feedback_erasure import erasure_records
from shared.messaging import acls, events, topics


def body(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"feedback_id": "f1", "customer_id": "c1", "kind": "nps", "score": 9}
    document.update(changes)
    return {k: v for k, v in document.items() if v is not None}


def refused_field(document: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as error:
        FeedbackIn.model_validate(document)
    [first, *_] = error.value.errors()
    return ".".join(str(part) for part in first["loc"])


def test_a_well_formed_feedback_is_taken() -> None:
    taken = FeedbackIn.model_validate(
        body(purchase_id="p1", store_id="s1", comment="Great service, thanks!")
    )
    assert (taken.kind, taken.score, taken.purchase_id) == ("nps", 9, "p1")
    assert FeedbackIn.model_validate(body(kind="survey", score=None)).score is None
    assert FeedbackIn.model_validate(body(kind="review", score=None)).score is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"score": None}, "score"),  # an nps needs a score
        ({"score": 11}, "score"),
        ({"score": -1}, "score"),
        ({"score": "9"}, "score"),  # strict: a number, not text
        ({"score": 9.5}, "score"),
        ({"kind": "review", "score": 0}, "score"),
        ({"kind": "review", "score": 6}, "score"),
        ({"kind": "rant"}, "kind"),
        ({"comment": "x" * 1_001}, "comment"),
        ({"comment": ""}, "comment"),
        ({"comment": "line\nbreak"}, "comment"),
        ({"comment": "bell\x07"}, "comment"),
        ({"feedback_id": "has space"}, "feedback_id"),
        ({"customer_id": ""}, "customer_id"),
        ({"purchase_id": "p 1"}, "purchase_id"),
        ({"partner_id": "mine"}, "partner_id"),  # never from the body
    ],
)
def test_bad_input_is_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    document = body()
    document.update(changes)
    document = {k: v for k, v in document.items() if v is not None}
    assert refused_field(document) == field


def test_a_comment_of_a_thousand_characters_is_taken() -> None:
    assert FeedbackIn.model_validate(body(comment="é" * 1_000)).comment == "é" * 1_000


@given(st.integers(min_value=-5, max_value=15), st.sampled_from(["nps", "review", "survey"]))
def test_the_score_fits_the_kind(score: int, kind: str) -> None:
    low, high = events.FEEDBACK_SCORES[kind]
    try:
        FeedbackIn.model_validate(body(kind=kind, score=score))
    except ValidationError:
        assert not low <= score <= high
    else:
        assert low <= score <= high


def test_the_event_refuses_what_the_body_refuses() -> None:
    with pytest.raises(ValidationError):
        events.FeedbackReceived(
            feedback_id="f1",
            partner_id="p",
            customer_id="c1",
            kind="nps",
            given_at="2026-01-01T00:00:00Z",
        )


def test_an_erasure_tombstones_each_feedback_key_on_the_topic_and_its_dead_letters() -> None:
    key = events.feedback_key("bar-1", "f1")
    records = erasure_records(key)
    assert [topic for topic, _ in records] == [
        topics.FEEDBACK,
        topics.dead_letter_topic(topics.FEEDBACK),
    ]
    assert len({cause for _, cause in records}) == 2  # distinct outbox row ids
    assert all(key in cause for _, cause in records)  # distinct per feedback
    assert {topic for topic, _ in records} <= set(acls.GRANTS["ingest"].writes)
