"""Refunds and referrals on the real PostgreSQL: the batch's statements, proportional
reversal, a refund before its purchase, debt left by points already spent and repaid by the
next earning, the referrer's bonus once."""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.points.adapters.repositories.api import ledger_repository
from services.points.domain.lots import balance_of
from shared.messaging import events
from shared.messaging.events import CloudEvent
from tests.integration.points import support
from tests.integration.points.support import enrolled, purchase, refund
from tests.support.services import ADMIN, READER

pytestmark = pytest.mark.integration


async def apply(engine: AsyncEngine, batch: Sequence[CloudEvent]) -> list[int]:
    """Applies the batch in one transaction, as the consumer does; the points reversed."""
    sink = await support.apply(engine, batch)
    return [e.data["points"] for _, _, e in sink.events if e.type == events.POINTS_REVERSED]


async def balance(points: httpx.AsyncClient, customer: str) -> tuple[int, int]:
    response = await points.get(f"/v1/customers/{customer}/balance", headers=READER)
    assert response.status_code == 200
    body = response.json()
    return body["available"], body["debt"]


async def test_partial_refunds_reverse_in_proportion_and_a_replay_changes_nothing(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = f"c-{uuid.uuid4()}"
    await apply(engine, [enrolled(customer), purchase(customer, "p1", "49.99")])
    assert await apply(engine, [refund(customer, "p1", "r1", "10.00")]) == [9]
    assert await apply(engine, [refund(customer, "p1", "r2", "39.99")]) == [40]
    assert await balance(points, customer) == (100, 0)
    assert await apply(engine, [refund(customer, "p1", "r2", "39.99")]) == []
    assert await balance(points, customer) == (100, 0)


async def test_a_refund_before_its_purchase_waits_for_it(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = f"c-{uuid.uuid4()}"
    assert await apply(engine, [enrolled(customer), refund(customer, "p1", "r1", "20.00")]) == []
    assert await apply(engine, [purchase(customer, "p1", "20.00")]) == [20]
    assert await balance(points, customer) == (100, 0)


async def test_spent_points_of_a_refunded_purchase_are_debt_the_next_earning_repays(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = f"c-{uuid.uuid4()}"
    await apply(engine, [enrolled(customer), purchase(customer, "p1", "50.00")])
    spent = await points.post(
        f"/v1/customers/{customer}/redemptions",
        json={"points": 150, "reward": "voucher"},
        headers={**ADMIN, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert spent.status_code == 201
    assert await apply(engine, [refund(customer, "p1", "r1", "50.00")]) == [50]
    assert await balance(points, customer) == (0, 50)
    await apply(engine, [purchase(customer, "p2", "80.00")])
    assert await balance(points, customer) == (30, 0)


async def test_the_referrer_gets_the_bonus_once_and_an_unknown_one_nothing(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    referrer, referred, stray = (f"c-{uuid.uuid4()}" for _ in range(3))
    await apply(engine, [enrolled(referrer), enrolled(referred, referred_by=referrer)])
    await apply(engine, [enrolled(stray, referred_by=f"c-{uuid.uuid4()}")])
    await apply(engine, [purchase(referred, "p1", "10.00"), purchase(stray, "p1", "10.00")])
    await apply(engine, [purchase(referred, "p2", "10.00")])
    assert await balance(points, referrer) == (300, 0)
    assert await balance(points, stray) == (110, 0)


async def test_the_balance_read_from_open_lots_equals_the_one_derived_from_the_whole_ledger(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """The balance endpoint loads only the lots with points left and lets the database sum
    the rest: it must answer exactly what `balance_of` derives from every entry."""
    customer = f"c-{uuid.uuid4()}"
    admin = {**ADMIN, "Idempotency-Key": str(uuid.uuid4())}
    await apply(engine, [enrolled(customer), purchase(customer, "p1", "50.00")])
    await apply(engine, [purchase(customer, "p2", "30.00")])
    redeemed = await points.post(
        f"/v1/customers/{customer}/redemptions", json={"points": 170, "reward": "x"}, headers=admin
    )
    assert redeemed.status_code == 201
    await apply(engine, [refund(customer, "p1", "r1", "50.00")])  # 40 of it debt, then
    held = await points.post(
        f"/v1/customers/{customer}/holds",
        json={"points": 1, "reward": "y"},
        headers={**ADMIN, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert held.status_code == 409  # nothing available while in debt
    await apply(engine, [purchase(customer, "p3", "70.00")])  # repays the 40 first

    response = await points.get(f"/v1/customers/{customer}/balance", headers=READER)
    assert response.status_code == 200
    async with engine.connect() as conn:
        repository = ledger_repository(conn)
        derived = balance_of(
            customer,
            await repository.entries(customer),
            datetime.now(UTC),
            await repository.allocations_of(customer),
        )
    body = response.json()
    assert (body["available"], body["pending"], body["debt"], body["lifetime_earned"]) == (
        derived.available,
        derived.pending,
        derived.debt,
        derived.lifetime_earned,
    )
    assert (body["available"], body["debt"], body["lifetime_earned"]) == (30, 0, 250)
    assert [(e["points"], e["expires_at"]) for e in body["next_expiries"]] == [
        (e.points, e.expires_at.isoformat().replace("+00:00", "Z")) for e in derived.next_expiries
    ]
