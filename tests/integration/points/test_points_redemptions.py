"""Redemptions on the real PostgreSQL and Kafka: soonest-expiring lots first, never an
overspend under concurrent calls, Idempotency-Key, points.redeemed through the outbox."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.points.adapters.tables import allocations
from shared.messaging import events, topics
from tests.integration.points.support import NOW, customer_with_lots
from tests.support.kafka import events_for
from tests.support.polling import eventually
from tests.support.services import ADMIN, READER
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def redemption(points: int, reward: str = "coffee") -> dict[str, Any]:
    return {"points": points, "reward": reward}


async def test_a_redemption_draws_the_soonest_expiring_lots_and_is_announced(
    stack: Stack, points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (100, 300), (50, 20))
    response = await points.post(
        f"/v1/customers/{customer}/redemptions", json=redemption(120), headers=ADMIN
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["points"], body["available_after"]) == (120, 30)

    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(allocations.c.lot_id, allocations.c.points).where(
                allocations.c.entry_id == body["redemption_id"]
            )
        )
        drawn = {row.lot_id: row.points for row in rows}
    assert drawn == {f"{customer}/lot1": 50, f"{customer}/lot0": 70}
    ledger = (await points.get(f"/v1/customers/{customer}/ledger", headers=READER)).json()
    (redeemed_entry,) = [e for e in ledger["entries"] if e["kind"] == "redeem"]
    assert redeemed_entry["lots"] == [
        {"lot_id": f"{customer}/lot0", "points": 70},
        {"lot_id": f"{customer}/lot1", "points": 50},
    ]
    assert all(e["lots"] == [] for e in ledger["entries"] if e["kind"] == "earn")

    balance = (await points.get(f"/v1/customers/{customer}/balance", headers=READER)).json()
    assert balance["available"] == 30
    assert [e["points"] for e in balance["next_expiries"]] == [30]

    async def redeemed() -> list[Any] | None:
        found = [
            e
            for e in await events_for(stack.kafka, topics.POINTS, customer)
            if e.type == events.POINTS_REDEEMED
        ]
        return found or None

    (announced,) = await eventually(redeemed, what="points.redeemed on the points topic")
    assert announced.data["redemption_id"] == body["redemption_id"]
    assert (announced.data["points"], announced.data["reward"]) == (120, "coffee")


async def test_a_redemption_beyond_the_available_points_is_a_409_problem(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (40, 30))
    response = await points.post(
        f"/v1/customers/{customer}/redemptions", json=redemption(41), headers=ADMIN
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["available"] == 40
    balance = (await points.get(f"/v1/customers/{customer}/balance", headers=READER)).json()
    assert balance["available"] == 40


async def test_a_redemption_for_an_unknown_customer_is_a_404_problem(
    points: httpx.AsyncClient,
) -> None:
    response = await points.post(
        f"/v1/customers/c-{uuid.uuid4()}/redemptions", json=redemption(1), headers=ADMIN
    )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_retry_under_the_same_idempotency_key_redeems_once(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (100, 30))
    headers = {**ADMIN, "Idempotency-Key": str(uuid.uuid4())}
    url = f"/v1/customers/{customer}/redemptions"
    first = await points.post(url, json=redemption(60), headers=headers)
    again = await points.post(url, json=redemption(60), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await points.post(url, json=redemption(10), headers=headers)
    assert other.status_code == 409
    balance = (await points.get(f"/v1/customers/{customer}/balance", headers=READER)).json()
    assert balance["available"] == 40


async def test_concurrent_redemptions_never_spend_the_same_points_twice(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (60, 10), (40, 20))
    url = f"/v1/customers/{customer}/redemptions"
    answers = await asyncio.gather(
        *(points.post(url, json=redemption(30), headers=ADMIN) for _ in range(8))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 3 + [409] * 5
    afters = sorted(a.json()["available_after"] for a in answers if a.status_code == 201)
    assert afters == [10, 40, 70]
    balance = (await points.get(f"/v1/customers/{customer}/balance", headers=READER)).json()
    assert balance["available"] == 10


# --- Holds -----------------------------------------------------------------------------------


async def available(points: httpx.AsyncClient, customer: str) -> int:
    balance = (await points.get(f"/v1/customers/{customer}/balance", headers=READER)).json()
    result: int = balance["available"]
    return result


async def place_hold(points: httpx.AsyncClient, customer: str, amount: int) -> dict[str, Any]:
    response = await points.post(
        f"/v1/customers/{customer}/holds", json=redemption(amount, "till 7"), headers=ADMIN
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_captured_hold_keeps_its_points_spent_and_is_announced(
    stack: Stack, points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (100, 30))
    before = datetime.now(UTC)
    hold = await place_hold(points, customer, 40)
    expires_at = datetime.fromisoformat(hold["expires_at"])
    assert before + timedelta(minutes=15) <= expires_at <= datetime.now(UTC) + timedelta(minutes=15)
    assert await available(points, customer) == 60

    url = f"/v1/holds/{hold['hold_id']}"
    captured = await points.post(f"{url}/capture", headers=ADMIN)
    assert captured.status_code == 200, captured.text
    assert (captured.json()["status"], captured.json()["points"]) == ("captured", 40)
    again = await points.post(f"{url}/capture", headers=ADMIN)
    assert (again.status_code, again.json()["status"]) == (200, "captured")
    voided = await points.post(f"{url}/void", headers=ADMIN)
    assert voided.status_code == 409
    assert voided.headers["content-type"].startswith("application/problem+json")
    assert await available(points, customer) == 60

    async def redeemed() -> list[Any] | None:
        found = [
            e
            for e in await events_for(stack.kafka, topics.POINTS, customer)
            if e.type == events.POINTS_REDEEMED
        ]
        return found or None

    (announced,) = await eventually(redeemed, what="points.redeemed for the captured hold")
    assert (announced.data["redemption_id"], announced.data["points"]) == (hold["hold_id"], 40)


async def test_a_voided_hold_gives_its_points_back_once(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (60, 10), (40, 20))
    hold = await place_hold(points, customer, 70)
    assert await available(points, customer) == 30
    url = f"/v1/holds/{hold['hold_id']}"
    for _ in range(2):
        voided = await points.post(f"{url}/void", headers=ADMIN)
        assert (voided.status_code, voided.json()["status"]) == (200, "voided")
    assert await available(points, customer) == 100
    assert (await points.post(f"{url}/capture", headers=ADMIN)).status_code == 409
    balance = (await points.get(f"/v1/customers/{customer}/balance", headers=READER)).json()
    assert [e["points"] for e in balance["next_expiries"]] == [60, 40]


async def test_a_hold_beyond_the_available_points_or_of_an_unknown_id_is_a_problem(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (10, 10))
    response = await points.post(
        f"/v1/customers/{customer}/holds", json=redemption(11), headers=ADMIN
    )
    assert response.status_code == 409
    unknown = await points.post(f"/v1/holds/{uuid.uuid4()}/capture", headers=ADMIN)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")


async def run_job(points: httpx.AsyncClient, name: str, as_of: datetime) -> dict[str, Any]:
    response = await points.post(
        f"/v1/admin/jobs/{name}", params={"as_of": as_of.isoformat()}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    [summary] = response.json()["jobs"]
    assert isinstance(summary, dict)
    return summary


async def test_an_uncaptured_hold_lapses_at_its_timeout_and_its_points_return(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (50, 30))
    hold = await place_hold(points, customer, 30)
    expires_at = datetime.fromisoformat(hold["expires_at"])

    await run_job(points, "lapse-holds", expires_at - timedelta(seconds=1))
    assert await available(points, customer) == 20
    first = await run_job(points, "lapse-holds", expires_at)
    assert first["lapsed"] >= 1
    assert await available(points, customer) == 50
    again = await run_job(points, "lapse-holds", expires_at)
    assert again["lapsed"] == 0
    assert await available(points, customer) == 50
    captured = await points.post(f"/v1/holds/{hold['hold_id']}/capture", headers=ADMIN)
    assert captured.status_code == 409
    voided = await points.post(f"/v1/holds/{hold['hold_id']}/void", headers=ADMIN)
    assert (voided.status_code, voided.json()["status"]) == (200, "lapsed")
    assert await available(points, customer) == 50


# --- Expiry ----------------------------------------------------------------------------------


async def points_events(stack: Stack, customer: str, event_type: str) -> list[Any]:
    return [
        e for e in await events_for(stack.kafka, topics.POINTS, customer) if e.type == event_type
    ]


async def test_lots_are_warned_once_then_expired_once_of_what_is_left(
    stack: Stack, points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (50, 20), (30, 100))
    spent = await points.post(
        f"/v1/customers/{customer}/redemptions", json=redemption(10), headers=ADMIN
    )
    assert spent.status_code == 201

    await run_job(points, "warn-expiring", NOW)
    assert (await run_job(points, "warn-expiring", NOW))["warnings"] == 0
    (warning,) = await eventually(
        lambda: _some(points_events(stack, customer, events.POINTS_EXPIRING)),
        what="one points.expiring",
    )
    assert warning.data["points"] == 40
    assert datetime.fromisoformat(warning.data["expires_at"]) == NOW + timedelta(days=20)

    expires_at = NOW + timedelta(days=20)
    await run_job(points, "expire-points", expires_at - timedelta(seconds=1))
    assert await available(points, customer) == 70
    first = await run_job(points, "expire-points", expires_at)
    assert first["expired_lots"] >= 1
    assert (await run_job(points, "expire-points", expires_at))["expired_lots"] == 0
    balance = (await points.get(f"/v1/customers/{customer}/balance", headers=READER)).json()
    assert (balance["available"], balance["lifetime_earned"]) == (30, 80)
    assert [e["points"] for e in balance["next_expiries"]] == [30]
    (expired,) = await eventually(
        lambda: _some(points_events(stack, customer, events.POINTS_EXPIRED)),
        what="one points.expired",
    )
    assert expired.data["points"] == 40
    ledger = (await points.get(f"/v1/customers/{customer}/ledger", headers=READER)).json()
    assert sorted(e["kind"] for e in ledger["entries"]) == ["earn", "earn", "expire", "redeem"]


async def _some(found: Any) -> list[Any] | None:
    result: list[Any] = await found
    return result or None
