"""Points farmed for nothing (issue 19) on the real PostgreSQL: the referral bonus only for
a first purchase of at least the minimum, pending for the return window and taken back once
with a refund within it that leaves less than the minimum kept; the velocity guard of the
shipped program on."""

import uuid
from collections.abc import Sequence

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.points.adapters.program_file import DEFAULT_PROGRAM_FILE, load_program
from services.points.adapters.tables import ledger_entries
from services.points.domain.model import Program
from shared.messaging import events
from shared.messaging.events import CloudEvent
from tests.integration.points import support
from tests.integration.points.support import enrolled, purchase, refund
from tests.support.factories import PARTNER
from tests.support.services import READER

pytestmark = pytest.mark.integration

WINDOW = Program(pending_days=14)


async def apply(engine: AsyncEngine, batch: Sequence[CloudEvent]) -> list[tuple[str, int]]:
    """The batch applied with a return window of 14 days; the referrer's events (type,
    points) it caused beyond welcomes."""
    sink = await support.apply(engine, batch, WINDOW)
    return [
        (event.type, event.data["points"])
        for _, _, event in sink.events
        if event.type in (events.POINTS_EARNED, events.POINTS_REVERSED)
        and event.data.get("reason") != "welcome"
        and event.subject.startswith("ref-")
    ]


async def balance(points: httpx.AsyncClient, customer: str) -> tuple[int, int, int]:
    response = await points.get(f"/v1/customers/{customer}/balance", headers=READER)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["available"], body["pending"], body["debt"]


async def entries(engine: AsyncEngine, customer: str) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(ledger_entries.c.entry_id, ledger_entries.c.points).where(
                ledger_entries.c.customer_id == customer
            )
        )
        return {row.entry_id: row.points for row in rows}


def pair() -> tuple[str, str]:
    return f"ref-{uuid.uuid4()}", f"c-{uuid.uuid4()}"


async def test_a_purchase_below_the_minimum_pays_no_referral(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    referrer, referred = pair()
    await apply(engine, [enrolled(referrer), enrolled(referred, referred_by=referrer)])
    assert await apply(engine, [purchase(referred, "p1", "0.01")]) == []
    assert await balance(points, referrer) == (100, 0, 0)
    assert f"referral:{referred}" not in await entries(engine, referrer)


async def test_a_full_refund_within_the_window_takes_the_pending_bonus_back_once(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    referrer, referred = pair()
    await apply(engine, [enrolled(referrer), enrolled(referred, referred_by=referrer)])
    granted = await apply(engine, [purchase(referred, "p1", "10.00")])
    assert granted == [(events.POINTS_EARNED, 200)]
    assert await balance(points, referrer) == (100, 200, 0)  # pending for the window
    taken = await apply(engine, [refund(referred, "p1", "r1", "10.00")])
    assert taken == [(events.POINTS_REVERSED, 200)]
    assert await balance(points, referrer) == (100, 0, 0)
    again = [refund(referred, "p1", "r1", "10.00"), purchase(referred, "p2", "50.00")]
    assert await apply(engine, again) == []
    found = await entries(engine, referrer)
    assert {k: v for k, v in found.items() if k.startswith("referral")} == {
        f"referral:{referred}": 200,
        f"referral-reversed:{referred}": -200,
    }
    assert await balance(points, referrer) == (100, 0, 0)


async def test_a_refund_that_came_first_takes_the_bonus_back_with_its_purchase(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    referrer, referred = pair()
    await apply(engine, [enrolled(referrer), enrolled(referred, referred_by=referrer)])
    assert await apply(engine, [refund(referred, "p1", "r1", "15.00")]) == []
    assert await apply(engine, [purchase(referred, "p1", "15.00")]) == [
        (events.POINTS_EARNED, 200),
        (events.POINTS_REVERSED, 200),
    ]
    assert await balance(points, referrer) == (100, 0, 0)


async def test_a_refund_that_leaves_the_minimum_kept_leaves_the_bonus(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    referrer, referred = pair()
    await apply(engine, [enrolled(referrer), enrolled(referred, referred_by=referrer)])
    await apply(engine, [purchase(referred, "p1", "30.00")])
    assert await apply(engine, [refund(referred, "p1", "r1", "20.00")]) == []
    assert await balance(points, referrer) == (100, 200, 0)


async def test_the_shipped_program_holds_what_passes_5000_points_a_day(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = f"c-{uuid.uuid4()}"
    shipped = load_program(DEFAULT_PROGRAM_FILE)
    await support.apply(engine, [enrolled(customer), purchase(customer, "p1", "6000.00")], shipped)
    found = await entries(engine, customer)
    assert found[f"purchase:{PARTNER}:{customer}.p1"] == 5000
    assert found[f"held:purchase:{PARTNER}:{customer}.p1"] == 1000
