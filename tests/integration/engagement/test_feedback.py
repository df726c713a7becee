"""Feedback in engagement on the test stack's Kafka and PostgreSQL: feedback
read from the feedback topic is kept with its comment and store, rewarded once per purchase
when a feedback reward is set (its API refusing bad bodies), counted in the NPS report per
partner and store (computed in SQL), and erased with the member: the comment gone from
engagement's database, and feedback read after the erasure never kept.

Every feedback here is of a partner of this module's own, so no other test's feedback counts
in its reports; the reward applies to feedback only, which no other test gives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.ext.asyncio import AsyncEngine

from services.engagement.domain.feedback import RULE_ID, feedback_grant_id
from services.engagement.domain.model import purchase_key
from shared.messaging import events, topics
from shared.messaging.acls import consumer_group
from shared.messaging.connection import client_options
from shared.messaging.events import CloudEvent
from tests.integration.engagement.support import WITHIN, engagement_events, events_reach, new_id
from tests.integration.tiers.test_tiers import send_all
from tests.support import factories
from tests.support.kafka import provision_partners
from tests.support.polling import eventually
from tests.support.services import ADMIN, READER
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

PATH = "/v1/feedback-reward"
NPS = "/v1/reports/nps"
COMMENT = "Lovely staff, slow queue"


def feedback(
    partner_id: str, customer_id: str, *, at: datetime | None = None, **fields: Any
) -> CloudEvent:
    return factories.feedback(customer_id, partner_id=partner_id, at=at, **fields)


async def send(stack: Stack, *given: CloudEvent) -> list[tuple[TopicPartition, int]]:
    """Publishes feedback as ingest does (keyed by the feedback); where each record landed."""
    await provision_partners(stack.kafka, given)
    producer = AIOKafkaProducer(**client_options(stack.kafka), acks="all")
    await producer.start()
    try:
        landed = []
        for event in given:
            data = events.FeedbackReceived.model_validate(event.data)
            key = events.feedback_key(data.partner_id, data.feedback_id)
            meta = await producer.send_and_wait(
                topics.FEEDBACK, value=event.to_bytes(), key=key.encode()
            )
            landed.append((TopicPartition(meta.topic, meta.partition), meta.offset))
        return landed
    finally:
        await producer.stop()


async def consumed(stack: Stack, landed: list[tuple[TopicPartition, int]]) -> None:
    """Until engagement's consumer group committed past each record (it commits only after
    the transaction that applied the record's batch)."""
    admin = AIOKafkaAdminClient(**client_options(stack.kafka))
    await admin.start()
    try:

        async def past() -> bool:
            committed = await admin.list_consumer_group_offsets(consumer_group("engagement"))
            return all(
                (done := committed.get(partition)) is not None and done.offset > offset
                for partition, offset in landed
            )

        await eventually(past, within=WITHIN, what="engagement consumed the feedback")
    finally:
        await admin.close()


async def kept(engine: AsyncEngine, customer_id: str) -> dict[str, dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT feedback_id, partner_id, store_id, purchase_key, kind, score, comment "
                "FROM feedback WHERE customer_id = :id"
            ),
            {"id": customer_id},
        )
    return {row.feedback_id: dict(row._mapping) for row in rows}


async def kept_count(engine: AsyncEngine, customer_id: str, count: int) -> dict[str, Any]:
    async def enough() -> dict[str, Any] | None:
        found = await kept(engine, customer_id)
        return found if len(found) == count else None

    return await eventually(enough, within=WITHIN, what=f"{count} feedback of {customer_id}")


async def rewards_of(engine: AsyncEngine, customer_id: str) -> list[str]:
    async with engine.connect() as conn:
        return list(
            await conn.scalars(
                sa.text("SELECT grant_id FROM feedback_rewards WHERE customer_id = :id"),
                {"id": customer_id},
            )
        )


@pytest.fixture
async def feedback_reward(client: httpx.AsyncClient) -> AsyncIterator[None]:
    answer = await client.put(PATH, json={"reward": {"points": 15}}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    try:
        yield
    finally:
        assert (await client.delete(PATH, headers=ADMIN)).status_code == 204


async def test_the_feedback_reward_is_set_read_refused_when_invalid_and_stopped(
    client: httpx.AsyncClient,
) -> None:
    for body, field in (
        ({"reward": {"points": 5, "reward_id": "cake"}}, "reward"),
        ({"reward": {"points": 0}}, "points"),
        ({"reward": {"points": 5}, "kinds": []}, "kinds"),
        ({"reward": {"points": 5}, "kinds": ["rant"]}, "kinds"),
        ({"reward": {"points": 5}, "colour": "red"}, "colour"),
    ):
        refused = await client.put(PATH, json=body, headers=ADMIN)
        assert refused.status_code == 422, refused.text
        assert field in refused.text
    assert (
        await client.put(PATH, json={"reward": {"points": 5}}, headers=READER)
    ).status_code == 403
    put = await client.put(
        PATH,
        json={"reward": {"points": 7}, "kinds": ["nps", "review"], "name": "Thanks!"},
        headers=ADMIN,
    )
    assert put.status_code == 200, put.text
    shown = await client.get(PATH, headers=ADMIN)
    assert shown.json() == {
        "reward": {"points": 7, "reward_id": None},
        "kinds": ["review", "nps"],
        "name": "Thanks!",
    }
    assert (await client.delete(PATH, headers=ADMIN)).status_code == 204
    assert (await client.get(PATH, headers=ADMIN)).status_code == 404
    assert (await client.delete(PATH, headers=ADMIN)).status_code == 204


async def test_feedback_is_kept_rewarded_once_per_purchase_and_erased_with_the_member(
    stack: Stack, engine: AsyncEngine, feedback_reward: None
) -> None:
    partner, member = new_id("partner"), new_id("member")
    await send(
        stack,
        feedback(partner, member, feedback_id="f1", purchase_id="p1", comment=COMMENT),
        feedback(partner, member, feedback_id="f2", purchase_id="p1", kind="review", score=4),
        feedback(partner, member, feedback_id="f3", store_id="s1", score=2),  # no purchase
    )
    stored = await kept_count(engine, member, 3)
    assert stored["f1"]["comment"] == COMMENT
    assert stored["f1"]["purchase_key"] == purchase_key(partner, "p1")
    assert (stored["f3"]["store_id"], stored["f3"]["score"]) == ("s1", 2)

    [rewarded] = await events_reach(stack, member, [events.ENGAGEMENT_REWARDED], 1, RULE_ID)
    payload = rewarded.data_as(events.EngagementRewarded)
    assert payload.grant_id == feedback_grant_id(purchase_key(partner, "p1"))
    assert (payload.reason, payload.points, payload.purchase_id) == ("feedback", 15, "p1")
    # Feedback on the same purchase later: consumed, never a second reward.
    await consumed(stack, await send(stack, feedback(partner, member, purchase_id="p1")))
    assert await rewards_of(engine, member) == [payload.grant_id]
    assert len(await engagement_events(stack, member, [events.ENGAGEMENT_REWARDED], RULE_ID)) == 1

    # The erasure: every comment of the member leaves engagement's database.
    await send_all(stack, [factories.erasure(member)])

    async def gone() -> bool:
        return not await kept(engine, member) and not await rewards_of(engine, member)

    await eventually(gone, within=WITHIN, what=f"{member}'s feedback erased")
    # Feedback read after the erasure (it travels on its own topic): never kept.
    await consumed(stack, await send(stack, feedback(partner, member, comment="after")))
    assert await kept(engine, member) == {}


async def test_the_nps_report_per_partner_and_store(
    stack: Stack, engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    partner, member = new_id("partner"), new_id("member")
    day = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    scores = {"s1": [10, 9, 9, 8, 3], "s2": [0, 6, 7]}
    given = [
        feedback(partner, member, store_id=store, score=score, at=day)
        for store, store_scores in scores.items()
        for score in store_scores
    ]
    given.append(feedback(partner, member, store_id="s1", kind="review", score=5, at=day))
    given.append(feedback(partner, member, store_id="s1", score=0, at=day - timedelta(days=5)))
    await send(stack, *given)
    await kept_count(engine, member, len(given))

    async def report(**params: str) -> dict[str, Any]:
        answer = await client.get(NPS, params=params, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    since = (day - timedelta(days=1)).isoformat()
    s1 = await report(partner_id=partner, store_id="s1", **{"from": since})
    assert (s1["count"], s1["promoters"], s1["passives"], s1["detractors"]) == (5, 3, 1, 1)
    assert (s1["nps"], s1["store_id"], s1["partner_id"]) == (40.0, "s1", partner)
    s2 = await report(partner_id=partner, store_id="s2")
    assert (s2["count"], s2["promoters"], s2["passives"], s2["detractors"], s2["nps"]) == (
        3,
        0,
        1,
        2,
        -66.7,
    )
    everything = await report(partner_id=partner)
    # 3 promoters, 2 passives, 4 detractors (the older 0 of s1 among them)
    assert (everything["count"], everything["passives"], everything["nps"]) == (9, 2, -11.1)
    before = await report(partner_id=partner, to=since)
    assert (before["count"], before["detractors"], before["nps"]) == (1, 1, -100.0)
    nobody = await report(partner_id=new_id("partner"))
    assert (nobody["count"], nobody["nps"]) == (0, None)
    for params in ({"from": "yesterday"}, {"from": "2026-01-01T00:00:00"}, {"partner_id": "a b"}):
        refused = await client.get(NPS, params=params, headers=ADMIN)
        assert refused.status_code == 422, (params, refused.text)
    backwards = {"from": day.isoformat(), "to": (day - timedelta(days=1)).isoformat()}
    assert (await client.get(NPS, params=backwards, headers=ADMIN)).status_code == 422
    assert (await client.get(NPS, headers=READER)).status_code == 403
