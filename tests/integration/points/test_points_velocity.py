"""The velocity guard on the real PostgreSQL: the day's points counted by the database,
earnings above the ceiling held in the ledger, released or rejected by staff once."""

import uuid
from collections.abc import Sequence

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.points.domain.model import Program
from shared.messaging.events import CloudEvent
from tests.integration.points import support
from tests.integration.points.support import enrolled, purchase, refund
from tests.support.services import ADMIN, READER

pytestmark = pytest.mark.integration

GUARDED = Program(max_points_per_day=100)


async def apply(engine: AsyncEngine, batch: Sequence[CloudEvent]) -> None:
    await support.apply(engine, batch, GUARDED)


async def held_customer(engine: AsyncEngine) -> tuple[str, str]:
    """A customer who earned 140 purchase points in a day: 40 of them held. Their held id."""
    customer = f"c-{uuid.uuid4()}"
    await apply(engine, [enrolled(customer), purchase(customer, "p1", "90.00")])
    await apply(engine, [purchase(customer, "p2", "50.00")])
    return customer, f"held:purchase:demo:{customer}.p2"


async def available(points: httpx.AsyncClient, customer: str) -> int:
    response = await points.get(f"/v1/customers/{customer}/balance", headers=READER)
    value: int = response.json()["available"]
    return value


async def test_a_held_earning_shows_in_the_ledger_and_once_released_is_spendable(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer, held_id = await held_customer(engine)
    assert await available(points, customer) == 200
    ledger = (await points.get(f"/v1/customers/{customer}/ledger", headers=READER)).json()
    assert [(e["kind"], e["points"]) for e in ledger["entries"] if e["kind"] == "held"] == [
        ("held", 40)
    ]
    first = await points.post(f"/v1/held/{held_id}/release", headers=ADMIN)
    again = await points.post(f"/v1/held/{held_id}/release", headers=ADMIN)
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()["decision"] == "released"
    assert await available(points, customer) == 240
    refused = await points.post(f"/v1/held/{held_id}/reject", headers=ADMIN)
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")


async def test_a_rejected_earning_is_never_granted(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer, held_id = await held_customer(engine)
    rejected = await points.post(f"/v1/held/{held_id}/reject", headers=ADMIN)
    assert rejected.status_code == 200
    assert (await points.post(f"/v1/held/{held_id}/release", headers=ADMIN)).status_code == 409
    assert await available(points, customer) == 200


async def test_an_unknown_held_earning_is_a_404_and_readers_may_not_decide(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    _, held_id = await held_customer(engine)
    unknown = await points.post(f"/v1/held/held:nothing-{uuid.uuid4()}/release", headers=ADMIN)
    reader = await points.post(f"/v1/held/{held_id}/release", headers=READER)
    assert (unknown.status_code, reader.status_code) == (404, 403)


async def test_a_refund_takes_the_held_part_first_and_a_release_then_gives_only_the_rest(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """p2 earned 50: 10 granted, 40 held. Refunding 30.00 of it takes back 30 points, all of
    them from the held part: the release then grants the 10 left, not the 40."""
    customer, held_id = await held_customer(engine)
    await apply(engine, [refund(customer, "p2", "r1", "30.00")])
    assert await available(points, customer) == 200
    released = await points.post(f"/v1/held/{held_id}/release", headers=ADMIN)
    assert released.status_code == 200
    assert await available(points, customer) == 210
