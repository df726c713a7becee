"""An imported member's opening tier on the test stack's Kafka and PostgreSQL, with the tiers
service in-process: `fedelta.points.imported.v1` in, the tier over HTTP (reason `import`),
its history, and one `tier.changed` out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.tiers.adapters.tables import customers, qualifying_activity, tier_history
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent, derived_event_id
from tests.support import factories
from tests.support.kafka import events_for, publish
from tests.support.polling import eventually
from tests.support.services import READER
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

WITHIN = 60.0


def new_customer_id() -> str:
    return f"tiers-import-it-{uuid.uuid4()}"


def imported(
    customer_id: str, tier: str | None, since: datetime | None, at: datetime
) -> CloudEvent:
    payload = events.PointsImported(
        customer_id=customer_id,
        partner_id="demo",
        lots=[events.ImportedLot(points=250)],
        tier=tier,
        tier_since=since,
        imported_at=at,
    )
    return factories.ingest_event(payload, customer_id, at, "demo")


async def send(stack: Stack, *batch: CloudEvent) -> None:
    for event in batch:
        await publish(stack.kafka, event.topic, event.subject, event)


async def tier_when(
    client: httpx.AsyncClient, customer_id: str, tier: str, spend: str = "0.00"
) -> dict[str, Any]:
    """The customer's tier document once it shows `tier` and a qualifying spend of `spend`
    (a purchase sent last as a marker: everything before it on the partition was read)."""

    async def shown() -> dict[str, Any] | None:
        response = await client.get(f"/v1/customers/{customer_id}/tier", headers=READER)
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body if (body["tier"], body["qualifying_spend"]) == (tier, spend) else None

    return await eventually(shown, within=WITHIN, what=f"{customer_id} {tier} at {spend}")


async def history(client: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/customers/{customer_id}/tier/history", headers=READER)
    assert response.status_code == 200, response.text
    changes: list[dict[str, Any]] = response.json()["changes"]
    return changes


async def enrolled_at(engine: AsyncEngine, customer_id: str) -> datetime:
    """The customer's enrolment instant once tiers has read the enrolment."""

    async def enrolled() -> datetime | None:
        async with engine.connect() as conn:
            found: datetime | None = (
                await conn.execute(
                    sa.select(customers.c.enrolled_at).where(customers.c.customer_id == customer_id)
                )
            ).scalar_one_or_none()
        return found

    return await eventually(enrolled, within=WITHIN, what=f"{customer_id}'s enrolment")


async def tier_changes(stack: Stack, customer_id: str) -> list[CloudEvent]:
    found = await events_for(stack.kafka, topics.TIERS, customer_id)
    return [e for e in found if e.type == events.TIER_CHANGED]


async def test_an_imported_member_holds_the_tier_from_its_since_announced_once(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    customer = new_customer_id()
    now = datetime.now(UTC).replace(microsecond=0)
    since = now - timedelta(days=100)
    review_at = since + timedelta(days=365)
    enrolment = factories.enrolment(customer, at=now, imported=True, welcome=False)
    the_import = imported(customer, "gold", since, now)
    await send(stack, enrolment, the_import)

    body = await tier_when(client, customer, "gold")
    assert datetime.fromisoformat(body["since"]) == since
    assert datetime.fromisoformat(body["review_at"]) == review_at
    assert body["reason"] == "import"
    assert (body["next_tier"], body["amount_to_next_tier"]) == ("platinum", "5000.00")
    assert body["amount_to_keep_tier"] == "2000.00"
    [change] = await history(client, customer)
    assert (change["from_tier"], change["to_tier"], change["direction"]) == ("bronze", "gold", "up")
    assert (change["reason"], change["actor"]) == ("import", None)
    assert datetime.fromisoformat(change["effective_at"]) == since
    assert datetime.fromisoformat(change["review_at"]) == review_at

    [announced] = await eventually(
        lambda: _some(tier_changes(stack, customer)), within=WITHIN, what="the tier.changed"
    )
    assert announced.id == derived_event_id(the_import.id, "tier-changed")
    changed = announced.data_as(events.TierChanged)
    assert (changed.from_tier, changed.to_tier, changed.direction, changed.reason) == (
        "bronze",
        "gold",
        "up",
        "import",
    )
    assert (changed.effective_at, changed.review_at) == (since, review_at)


async def _some(found: Any) -> list[CloudEvent] | None:
    return (await found) or None


async def test_an_import_delivered_again_or_naming_bronze_changes_nothing_more(
    stack: Stack, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    silver, bronze = new_customer_id(), new_customer_id()
    now = datetime.now(UTC).replace(microsecond=0)
    the_import = imported(silver, "silver", None, now)
    again = CloudEvent.model_validate(the_import.model_dump() | {"id": str(uuid.uuid4())})
    # Enrolments travel on another topic than purchases: wait until both are read, or a
    # purchase read first would date bronze's tier from itself.
    await send(
        stack,
        factories.enrolment(silver, at=now, imported=True),
        factories.enrolment(bronze, at=now, imported=True),
    )
    for member in (silver, bronze):
        assert await enrolled_at(engine, member) == now
    await send(
        stack,
        the_import,
        the_import,  # redelivered: the inbox knows it
        again,  # published again under a new id: the activity knows it
        imported(bronze, "bronze", now - timedelta(days=30), now),
        # The markers: once they count, everything before them on the partition was read.
        factories.purchase(silver, "10", at=now + timedelta(seconds=1)),
        factories.purchase(bronze, "10", at=now + timedelta(seconds=1)),
    )
    body = await tier_when(client, silver, "silver", "10.00")
    assert datetime.fromisoformat(body["since"]) == now  # no since: the import's instant
    bronze_body = await tier_when(client, bronze, "bronze", "10.00")
    assert bronze_body["reason"] is None
    assert datetime.fromisoformat(bronze_body["since"]) == now  # since the enrolment
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(tier_history.c.customer_id, tier_history.c.reason).where(
                    tier_history.c.customer_id.in_([silver, bronze])
                )
            )
        ).all()
        imports = (
            await conn.execute(
                sa.select(qualifying_activity.c.activity_id, qualifying_activity.c.tier).where(
                    qualifying_activity.c.customer_id.in_([silver, bronze]),
                    qualifying_activity.c.activity_id.like("import:%"),
                )
            )
        ).all()
    assert [tuple(row) for row in rows] == [(silver, "import")]
    assert [tuple(row) for row in imports] == [(f"import:{silver}", "silver")]
    assert len(await tier_changes(stack, silver)) == 1
    assert await tier_changes(stack, bronze) == []


async def test_an_import_read_before_the_enrolment_gives_the_tier_and_then_the_enrolment(
    stack: Stack, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = new_customer_id()
    now = datetime.now(UTC).replace(microsecond=0)
    since = now - timedelta(days=400)  # its review is already due
    await send(stack, imported(customer, "platinum", since, now))
    body = await tier_when(client, customer, "platinum")
    assert datetime.fromisoformat(body["review_at"]) == since + timedelta(days=365)

    await send(stack, factories.enrolment(customer, at=now, imported=True))

    assert await enrolled_at(engine, customer) == now
    after = await tier_when(client, customer, "platinum")
    assert after["since"] == body["since"] and after["review_at"] == body["review_at"]
    # The enrolment changes no tier: the history stays the import alone.
    [change] = await history(client, customer)
    assert (change["to_tier"], change["reason"]) == ("platinum", "import")
