"""`win-back` over a few thousand customers on the real database, in chunks that do not
divide them evenly: one message per lapsed customer with a contact, none to one without, none
to one who bought since, and a second run as of the same instant does nothing. The customers
are seeded as the benchmark seeds them (bench.jobs), as of an instant long before any other
test's data, and deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.jobs import clean, seed_notifications
from services.notifications.jobs import WinBack
from shared.clock import SystemClock
from tests.support.database import engine_for
from tests.support.stack import Stack

MEMBERS = 3000
CHUNK = 700
PREFIX = "jobs-at-scale-"
# Long before the other tests' customers, who then never lapse by this instant.
AS_OF = datetime(2001, 1, 1, tzinfo=UTC)


@pytest.fixture
async def database(stack: Stack) -> AsyncIterator[AsyncEngine]:
    stack.migrate("notifications")
    async with engine_for(stack, "notifications") as engine:
        yield engine


@pytest.fixture
async def seeded(database: AsyncEngine) -> AsyncIterator[tuple[str, datetime]]:
    prefix, as_of = f"{PREFIX}{uuid.uuid4().hex[:8]}-", AS_OF
    async with database.begin() as conn:
        await clean(conn, "notifications", PREFIX)  # what an interrupted run left
        await seed_notifications(conn, prefix, MEMBERS, as_of)
        # Two more: one without a contact, one who bought since.
        await conn.execute(
            sa.text(
                "INSERT INTO purchase_activity (customer_id, last_purchase_at) VALUES "
                "(:prefix || 'no-contact', CAST(:as_of AS timestamptz) - interval '91 days'), "
                "(:prefix || '000002', CAST(:as_of AS timestamptz) - interval '1 day') "
                "ON CONFLICT (customer_id) DO UPDATE SET last_purchase_at = "
                "excluded.last_purchase_at"
            ),
            {"prefix": prefix, "as_of": as_of},
        )
    try:
        yield prefix, as_of
    finally:
        async with database.begin() as conn:
            await clean(conn, "notifications", prefix)


async def test_every_lapsed_customer_gets_one_win_back_over_many_chunks(
    database: AsyncEngine, seeded: tuple[str, datetime]
) -> None:
    prefix, as_of = seeded
    job = WinBack(SystemClock(), timedelta(days=90), chunk_size=CHUNK)

    first = await job.run(database, as_of)
    again = await job.run(database, as_of)

    lapsed = MEMBERS - 1  # all but the one who bought since
    assert (first["lapsed"], first["scheduled"]) == (lapsed, lapsed)
    assert (again["lapsed"], again["scheduled"]) == (0, 0)
    bounds = {"low": prefix, "high": prefix + "\U0010ffff"}
    async with database.connect() as conn:
        sent = (
            await conn.execute(
                sa.text(
                    "SELECT count(*), count(DISTINCT customer_id), "
                    "count(*) FILTER (WHERE customer_id IN "
                    "(:low || 'no-contact', :low || '000002')) FROM deliveries "
                    "WHERE template = 'win_back' AND customer_id >= :low AND customer_id < :high"
                ),
                bounds,
            )
        ).one()
        marked = await conn.scalar(
            sa.text(
                "SELECT count(*) FROM purchase_activity WHERE win_back_for = last_purchase_at "
                "AND customer_id >= :low AND customer_id < :high"
            ),
            bounds,
        )
    assert tuple(sent) == (lapsed, lapsed, 0)
    assert marked == lapsed
