"""Targeting by segment on the test stack's Kafka and PostgreSQL: a stamp card and a challenge
of a segment reward the member a SegmentEntered event on `fedelta.segments.v1` put in it, and
not another; a later SegmentLeft takes them out and an older SegmentEntered read after it does
not put them back; an erasure removes the member's segments."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.engagement.adapters import tables
from shared.messaging import events
from shared.messaging.events import CloudEvent, new_event
from tests.integration.engagement.support import (
    WITHIN,
    card_reaches,
    coffee,
    create,
    engagement_events,
    events_reach,
    new_id,
    unique_category,
    window,
)
from tests.integration.tiers.test_tiers import send_all
from tests.support import factories
from tests.support.polling import eventually
from tests.support.services import ADMIN, READER
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

GRANTS = (events.ENGAGEMENT_REWARDED,)


def unique_segment() -> str:
    """A custom segment of this test alone (the stack is shared)."""
    return f"it-{uuid.uuid4().hex[:16]}"


def segment_event(customer_id: str, segment: str, entered: bool, at: datetime) -> CloudEvent:
    """What insights publishes on `fedelta.segments.v1`, keyed by the member."""
    kind = events.SegmentEntered if entered else events.SegmentLeft
    payload = kind(customer_id=customer_id, segment=segment, changed_at=at, reasons=["test"])
    return new_event(payload, source="insights", subject=customer_id, time=at)


async def membership(engine: AsyncEngine, customer_id: str) -> dict[str, bool]:
    table = tables.segment_memberships
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(table.c.segment, table.c.member).where(table.c.customer_id == customer_id)
        )
        return {row.segment: row.member for row in rows}


async def membership_is(engine: AsyncEngine, customer_id: str, expected: dict[str, bool]) -> None:
    async def reached() -> bool:
        return await membership(engine, customer_id) == expected

    await eventually(reached, within=WITHIN, what=f"{customer_id}'s segments {expected}")


async def listed_cards(client: httpx.AsyncClient, customer_id: str) -> set[str]:
    response = await client.get(f"/v1/customers/{customer_id}/stamp-cards", headers=READER)
    assert response.status_code == 200, response.text
    return {c["card_id"] for c in response.json()["items"]}


async def test_a_segments_card_and_challenge_reward_the_member_in_it_and_not_another(
    stack: Stack, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    category, segment = unique_category(), unique_segment()
    targeted: dict[str, Any] = {"category": category, "segment": segment, **window()}
    card = await create(
        client,
        "/v1/stamp-cards",
        {"name": "Perks card", "stamps_required": 2, "reward": {"points": 30}, **targeted},
    )
    assert card["segment"] == segment
    challenge = await create(
        client,
        "/v1/challenges",
        {
            "name": "Perks challenge",
            "goal": {"kind": "purchases", "target": "1", "category": category},
            "reward": {"points": 70},
            "segment": segment,
            **window(),
        },
    )
    # Untargeted, same category: shows when a member's purchases were applied.
    control = await create(
        client,
        "/v1/stamp-cards",
        {
            "name": "Everyone's card",
            "stamps_required": 100,
            "reward": {"points": 1},
            "category": category,
            **window(),
        },
    )
    inside, outside = new_id("inside"), new_id("outside")
    now = datetime.now(UTC)
    await send_all(
        stack,
        [
            factories.enrolment(inside, at=now - timedelta(days=1)),
            factories.enrolment(outside, at=now - timedelta(days=1)),
            segment_event(inside, segment, True, now - timedelta(hours=1)),
        ],
    )
    await membership_is(engine, inside, {segment: True})

    def coffees(member: str) -> list[CloudEvent]:
        return [
            factories.purchase(member, "3.00", at=now, items=[coffee(category)]) for _ in range(2)
        ]

    await send_all(stack, [*coffees(inside), *coffees(outside)])
    await card_reaches(client, inside, card["id"], stamps=0, completed=1)
    await card_reaches(client, outside, control["id"], stamps=2, completed=0)
    assert card["id"] not in await listed_cards(client, outside)  # not offered either
    granted = await events_reach(stack, inside, GRANTS, 1, card["id"])
    assert [e.data["points"] for e in granted] == [30]
    await events_reach(stack, inside, GRANTS, 1, challenge["id"])
    for rule in (card, challenge):
        assert await engagement_events(stack, outside, GRANTS, rule["id"]) == []

    # Out of the segment (a later change), then an older "entered" read late: still out. The
    # other segment, behind it on the member's partition, shows it was read.
    other = unique_segment()
    await send_all(stack, [segment_event(inside, segment, False, now)])
    await membership_is(engine, inside, {segment: False})
    await send_all(
        stack,
        [
            segment_event(inside, segment, True, now - timedelta(minutes=30)),
            segment_event(inside, other, True, now),
        ],
    )
    await membership_is(engine, inside, {segment: False, other: True})
    await send_all(stack, coffees(inside))
    await card_reaches(client, inside, control["id"], stamps=4, completed=0)
    await card_reaches(client, inside, card["id"], stamps=0, completed=1)
    assert len(await engagement_events(stack, inside, GRANTS, card["id"])) == 1

    # A rule in force may be retargeted, like its min_tier.
    patched = await client.patch(
        f"/v1/stamp-cards/{card['id']}", json={"segment": other, "tier": "bronze"}, headers=ADMIN
    )
    assert patched.status_code == 200, patched.text
    shown = (await client.get(f"/v1/stamp-cards/{card['id']}", headers=ADMIN)).json()
    assert (shown["segment"], shown["tier"], shown["min_tier"]) == (other, "bronze", None)

    await send_all(stack, [factories.erasure(inside)])
    await membership_is(engine, inside, {})
