"""Targeting on the real PostgreSQL and Kafka (issue 21): a campaign for a segment that
insights' events put a member in, and the win-back offer a lapsed member is made.

The points service of this module runs a program with a win-back offer (double points for 14
days); every member, partner and segment here is the module's own, so that no other test's
purchase is boosted."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.points.adapters.program_file import DEFAULT_PROGRAM_FILE
from services.points.adapters.tables import personal_offers, segment_memberships
from services.points.api.app import create_app
from services.points.settings import PointsSettings
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent, new_event
from tests.support import factories
from tests.support.kafka import events_for, publish
from tests.support.polling import eventually
from tests.support.services import ADMIN, READER, running, settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
OFFER = (
    "\nwin_back_offer:\n  name: Double points to welcome you back\n"
    '  multiplier: "2"\n  bonus: null\n  days: 14\n'
)


@pytest.fixture(scope="module")
async def points(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """Points with the default program and a win-back offer."""
    stack.migrate("points")
    program = tmp_path_factory.mktemp("points") / "program.yaml"
    program.write_text(DEFAULT_PROGRAM_FILE.read_text() + OFFER)
    settings = settings_for(PointsSettings, stack, "points", program_file=str(program))
    async with running(create_app, settings) as (_, client):
        yield client


def _instant(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _entered(customer_id: str, segment: str, changed_at: datetime) -> CloudEvent:
    payload = events.SegmentEntered(
        customer_id=customer_id, segment=segment, changed_at=changed_at, reasons=["test"]
    )
    return new_event(payload, source="insights", subject=customer_id, time=changed_at)


async def _in_segment(engine: AsyncEngine, customer_id: str, segment: str) -> bool:
    async with engine.connect() as conn:
        member = await conn.scalar(
            sa.select(segment_memberships.c.member).where(
                segment_memberships.c.customer_id == customer_id,
                segment_memberships.c.segment == segment,
            )
        )
    return member is True


async def _ledger(points: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]] | None:
    response = await points.get(f"/v1/customers/{customer_id}/ledger", headers=READER)
    if response.status_code != 200 or not response.json()["entries"]:
        return None
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


async def test_a_segment_campaign_boosts_the_member_insights_put_in_it_only(
    stack: Stack, points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    segment = f"t-{uuid.uuid4().hex[:12]}"
    partner = f"p-{uuid.uuid4().hex[:12]}"
    inside, outside = f"c-{uuid.uuid4()}", f"c-{uuid.uuid4()}"
    created = await points.post(
        "/v1/campaigns",
        json={
            "name": "double for the segment",
            "multiplier": "2",
            "partner_id": partner,
            "segment": segment,
            "starts_at": _instant(NOW - timedelta(days=1)),
            "ends_at": _instant(NOW + timedelta(days=1)),
        },
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert (campaign["segment"], "tier" in campaign) == (segment, False)

    # Segments and purchases travel on two topics: the purchases go once the entry is known.
    await publish(
        stack.kafka, topics.SEGMENTS, inside, _entered(inside, segment, NOW - timedelta(hours=1))
    )
    await eventually(lambda: _in_segment(engine, inside, segment), what="the segment entry")
    for customer in (inside, outside):
        bought = factories.purchase(customer, "10.00", at=NOW, partner_id=partner)
        await publish(stack.kafka, topics.PURCHASES, customer, bought)

    [boosted] = await eventually(lambda: _ledger(points, inside), what="the member's earning")
    [plain] = await eventually(lambda: _ledger(points, outside), what="the other's earning")
    assert (boosted["points"], boosted["rule_ids"]) == (20, ["base", f"campaign:{campaign['id']}"])
    assert (plain["points"], plain["rule_ids"]) == (10, ["base"])

    path = f"/v1/campaigns/{campaign['id']}"
    changed = await points.patch(path, json={"segment": None, "tier": "gold"}, headers=ADMIN)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["tier"], "segment" in changed.json()) == ("gold", False)
    assert (await points.get(path, headers=ADMIN)).json() == changed.json()
    await points.delete(path, headers=ADMIN)


async def test_a_lapsed_member_is_made_the_offer_and_the_next_purchase_earns_double(
    stack: Stack, points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = f"c-{uuid.uuid4()}"
    lapsed_at = NOW - timedelta(hours=1)
    entry = _entered(customer, "lifecycle:lapsed", lapsed_at)
    await publish(stack.kafka, topics.SEGMENTS, customer, entry)

    async def offer_granted() -> list[CloudEvent] | None:
        found = await events_for(stack.kafka, topics.POINTS, customer)
        granted = [e for e in found if e.type == events.POINTS_OFFER_GRANTED]
        return granted or None

    [granted] = await eventually(offer_granted, what="the offer's event")
    offer = granted.data_as(events.PointsOfferGranted)
    assert (offer.customer_id, offer.reason, offer.multiplier, offer.bonus) == (
        customer,
        "win_back",
        Decimal(2),
        None,
    )
    assert (offer.starts_at, offer.ends_at) == (lapsed_at, lapsed_at + timedelta(days=14))
    listed = await points.get(f"/v1/customers/{customer}/offers", headers=READER)
    assert listed.json() == {
        "items": [
            {
                "id": offer.offer_id,
                "reason": "win_back",
                "name": "Double points to welcome you back",
                "multiplier": "2",
                "bonus": None,
                "starts_at": _instant(lapsed_at),
                "ends_at": _instant(lapsed_at + timedelta(days=14)),
            }
        ]
    }

    bought = factories.purchase(customer, "10.00", at=NOW)
    await publish(stack.kafka, topics.PURCHASES, customer, bought)
    [earned] = await eventually(lambda: _ledger(points, customer), what="the purchase's earning")
    assert (earned["points"], earned["rule_ids"]) == (20, ["base", f"offer:{offer.offer_id}"])

    # The erasure of the member deletes their segments and offers.
    await publish(stack.kafka, topics.CUSTOMERS, customer, factories.erasure(customer))

    async def gone() -> bool:
        async with engine.connect() as conn:
            offers = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(personal_offers)
                .where(personal_offers.c.customer_id == customer)
            )
            rows = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(segment_memberships)
                .where(segment_memberships.c.customer_id == customer)
            )
        return offers == rows == 0

    await eventually(gone, what="the erased member's segments and offers deleted")
    listed = await points.get(f"/v1/customers/{customer}/offers", headers=READER)
    assert listed.json() == {"items": []}
