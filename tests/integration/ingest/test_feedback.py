"""`POST /v1/feedback` against the real PostgreSQL and Kafka: accepted and
published on the compacted feedback topic under the feedback's own key, the same feedback
again answered as the first time and another body under its id a 409, bad input refused by
field, unknown members and purchases refused; an erasure tombstones every feedback key of the
member on the feedback topic and its dead-letter topic."""

from __future__ import annotations

from functools import partial
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.adapters import tables
from shared.messaging import events, topics
from tests.integration.ingest.support import (
    Pos,
    assert_problem,
    count_rows,
    published,
    unique,
)
from tests.support.kafka import read_all
from tests.support.polling import eventually
from tests.support.services import ADMIN
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

COMMENT = "The barista remembered my order"


@pytest.fixture(scope="module")
async def pos(client: httpx.AsyncClient) -> Pos:
    partner_id = unique("feedback-partner")
    response = await client.post(
        "/v1/admin/partners",
        json={"name": "Café Feedback", "partner_id": partner_id},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    return Pos(client, partner_id, created["api_key"], created["signing_secret"])


@pytest.fixture
async def customer_id(pos: Pos) -> str:
    customer_id = unique("cust")
    response = await pos.enrol(customer_id, email="fb@example.com")
    assert response.status_code == 202, response.text
    return customer_id


async def give(pos: Pos, **body: Any) -> httpx.Response:
    return await pos.send("POST", "/v1/feedback", body, headers={"Idempotency-Key": unique("k")})


async def test_feedback_is_accepted_and_published_under_its_own_key(
    stack: Stack, pos: Pos, customer_id: str
) -> None:
    bought = await pos.purchase(customer_id, "fb-p1")
    assert bought.status_code == 202, bought.text
    feedback_id = unique("fb")
    body = {
        "feedback_id": feedback_id,
        "customer_id": customer_id,
        "purchase_id": "fb-p1",
        "store_id": "store-7",
        "kind": "nps",
        "score": 10,
        "comment": COMMENT,
    }
    answer = await give(pos, **body)
    assert answer.status_code == 202, answer.text
    event_id = answer.json()["event_id"]
    # The same feedback again (another Idempotency-Key): the first answer, nothing new.
    again = await give(pos, **body)
    assert (again.status_code, again.json()) == (202, {"event_id": event_id})
    conflict = await give(pos, **{**body, "score": 3})
    assert assert_problem(conflict, 409)["type"].endswith("idempotency-conflict")

    [event] = await published(stack, topics.FEEDBACK, customer_id, 1)
    assert (event.id, event.type) == (event_id, events.FEEDBACK_RECEIVED)
    received = events.FeedbackReceived.model_validate(event.data)
    assert (received.partner_id, received.store_id, received.purchase_id) == (
        pos.partner_id,
        "store-7",
        "fb-p1",
    )
    assert (received.kind, received.score, received.comment) == ("nps", 10, COMMENT)
    key = events.feedback_key(pos.partner_id, feedback_id).encode()
    records = [r for r in await read_all(stack.kafka, topics.FEEDBACK) if r.key == key]
    assert len(records) == 1


async def test_bad_feedback_is_refused_by_field_and_changes_nothing(
    pos: Pos, customer_id: str, db: AsyncEngine
) -> None:
    base = {"feedback_id": unique("fb"), "customer_id": customer_id, "kind": "nps", "score": 9}
    for changes, field in (
        ({"score": None}, "score"),
        ({"score": 11}, "score"),
        ({"kind": "review", "score": 9}, "score"),
        ({"kind": "gossip"}, "kind"),
        ({"comment": "x" * 1_001}, "comment"),
        ({"comment": "tab\there"}, "comment"),
        ({"partner_id": "other"}, "partner_id"),
    ):
        body = {k: v for k, v in {**base, **changes}.items() if v is not None}
        problem = assert_problem(await give(pos, **body), 422)
        assert field in problem["detail"], (field, problem)
    unknown = await give(pos, **{**base, "customer_id": unique("nobody")})
    assert assert_problem(unknown, 404)["type"].endswith("unknown-customer")
    not_theirs = await give(pos, **{**base, "purchase_id": unique("never")})
    assert assert_problem(not_theirs, 422)["type"].endswith("unknown-purchase")
    stored = await count_rows(db, tables.feedback, tables.feedback.c.customer_id == customer_id)
    assert stored == 0


async def test_feedback_without_a_score_or_comment_is_taken_for_a_survey(
    pos: Pos, customer_id: str
) -> None:
    answer = await give(pos, feedback_id=unique("fb"), customer_id=customer_id, kind="survey")
    assert answer.status_code == 202, answer.text


async def test_an_erasure_tombstones_each_feedback_of_the_member(
    stack: Stack, pos: Pos, customer_id: str, db: AsyncEngine
) -> None:
    given = [unique("fb"), unique("fb")]
    for feedback_id in given:
        answer = await give(
            pos,
            feedback_id=feedback_id,
            customer_id=customer_id,
            kind="review",
            score=4,
            comment=COMMENT,
        )
        assert answer.status_code == 202, answer.text
    erased = await pos.send("DELETE", f"/v1/customers/{customer_id}", raw=b"")
    assert erased.status_code == 202, erased.text
    keys = {events.feedback_key(pos.partner_id, f).encode() for f in given}

    async def tombstoned(topic: str) -> bool:
        found = {r.key for r in await read_all(stack.kafka, topic) if r.value is None}
        return keys <= found

    for topic in (topics.FEEDBACK, topics.dead_letter_topic(topics.FEEDBACK)):
        await eventually(partial(tombstoned, topic), what=f"feedback tombstones on {topic}")
    async with db.connect() as conn:
        hashes = set(
            await conn.scalars(
                sa.select(tables.feedback.c.request_hash).where(
                    tables.feedback.c.customer_id == customer_id
                )
            )
        )
    assert hashes == {""}  # they hashed a body with the comment
    late = await give(pos, feedback_id=unique("fb"), customer_id=customer_id, kind="nps", score=1)
    assert assert_problem(late, 404)["type"].endswith("erased-customer")
