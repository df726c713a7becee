"""An imported member on the real Kafka and PostgreSQL (issue 23, product §11): the balance is
exactly the imported lots with their expiries, the welcome bonus only when the import asked
for it, and a redelivered import changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.points.adapters.tables import customers, ledger_entries
from services.points.domain.model import add_months
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from tests.support import factories
from tests.support.kafka import events_for, publish
from tests.support.polling import eventually
from tests.support.services import READER
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
IMPORTED_AT = NOW - timedelta(minutes=1)
IN_A_MONTH = NOW + timedelta(days=30)


def imported_enrolment(customer: str, *, welcome: bool) -> CloudEvent:
    return factories.enrolment(
        customer,
        at=IMPORTED_AT,
        enrolled_at=IMPORTED_AT,
        partner_id="demo",
        imported=True,
        welcome=welcome,
        version=1,
    )


def opening_lots(customer: str) -> CloudEvent:
    """300 points to a month from now, 200 with the program's validity, 50 expired."""
    return factories.points_import(
        customer,
        [(300, IN_A_MONTH), (200, None), (50, NOW - timedelta(days=1))],
        at=IMPORTED_AT,
        imported_at=IMPORTED_AT,
        partner_id="demo",
    )


async def balance_once(
    client: httpx.AsyncClient, customer: str, available: int
) -> dict[str, Any] | None:
    response = await client.get(f"/v1/customers/{customer}/balance", headers=READER)
    if response.status_code != 200:
        return None
    body: dict[str, Any] = response.json()
    return body if body["available"] == available else None


async def enrolled(engine: AsyncEngine, customer: str) -> bool:
    async with engine.connect() as conn:
        found = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(customers)
            .where(customers.c.customer_id == customer)
        )
    return found == 1


async def ledger_of(engine: AsyncEngine, customer: str) -> list[sa.Row[Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(ledger_entries)
            .where(ledger_entries.c.customer_id == customer)
            .order_by(ledger_entries.c.seq)
        )
        return list(rows)


async def import_and_mark(stack: Stack, customer: str, *, welcome: bool) -> None:
    """The enrolment and the import (delivered twice), then a purchase of 2.00 behind the
    import on its partition: once that is applied, so is every copy of the import."""
    bootstrap = stack.kafka
    await publish(
        bootstrap, topics.CUSTOMERS, customer, imported_enrolment(customer, welcome=welcome)
    )
    lots = opening_lots(customer)
    await publish(bootstrap, topics.PURCHASES, customer, lots)
    await publish(bootstrap, topics.PURCHASES, customer, lots)
    marker = factories.purchase(customer, "2.00", at=NOW, purchase_id=f"{customer}.marker")
    await publish(bootstrap, topics.PURCHASES, customer, marker)


async def test_an_imported_member_holds_exactly_the_valid_lots_and_no_welcome_bonus(
    stack: Stack, points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = f"imp-{uuid.uuid4()}"
    await import_and_mark(stack, customer, welcome=False)

    balance = await eventually(lambda: balance_once(points, customer, 502), what="lots + marker")
    await eventually(lambda: enrolled(engine, customer), what="the enrolment")
    rows = await ledger_of(engine, customer)
    assert sorted((r.reason, r.kind, r.points, r.expires_at, r.partner_id) for r in rows) == [
        ("import", "bonus", 200, add_months(IMPORTED_AT, 12), "demo"),
        ("import", "bonus", 300, IN_A_MONTH, "demo"),
        ("purchase", "earn", 2, add_months(NOW, 12), "demo"),
    ]
    assert (balance["pending"], balance["lifetime_earned"]) == (0, 502)
    soonest = balance["next_expiries"][0]
    assert (soonest["points"], datetime.fromisoformat(soonest["expires_at"])) == (300, IN_A_MONTH)
    imported = [r for r in rows if r.reason == "import"]
    assert all(r.rule_ids == ["import"] and r.available_at == IMPORTED_AT for r in imported)

    announced = await eventually(
        lambda: _n_events(stack, customer, 3), what="three points.earned events"
    )
    assert sorted((e.data["points"], e.data["reason"]) for e in announced) == [
        (2, "purchase"),
        (200, "import"),
        (300, "import"),
    ]


async def test_with_the_welcome_the_imported_member_gets_the_bonus_too(
    stack: Stack, points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = f"imp-{uuid.uuid4()}"
    await import_and_mark(stack, customer, welcome=True)

    await eventually(lambda: balance_once(points, customer, 602), what="lots, bonus and marker")
    rows = await ledger_of(engine, customer)
    assert sorted((r.reason, r.points) for r in rows) == [
        ("import", 200),
        ("import", 300),
        ("purchase", 2),
        ("welcome", 100),
    ]


async def _n_events(stack: Stack, customer: str, count: int) -> list[CloudEvent] | None:
    """The member's `points.earned` events once there are `count`. Only those: another test's
    expiry-warning job, run a year ahead on the shared stack, may announce the lot expiring in
    a month with a `points.expiring` of its own."""
    found = await events_for(stack.kafka, topics.POINTS, customer)
    earned = [e for e in found if e.type == events.POINTS_EARNED]
    return earned if len(earned) >= count else None
