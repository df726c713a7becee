"""`warn-expiring` and `expire-points` over a few thousand members on the real database, in
chunks that do not divide them evenly: every lot warned of once and expired once, of what it
still held, and a second run as of the same instant does nothing. The members are seeded as
the benchmark seeds them (bench.jobs), as of an instant before any other test's data, and
deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.jobs import clean, seed_points
from services.points.domain.model import Program
from services.points.jobs import ExpirePoints, WarnExpiring
from shared.clock import SystemClock
from tests.support.database import engine_for
from tests.support.stack import Stack

MEMBERS = 3000
CHUNK = 700
PREFIX = "jobs-at-scale-"
# Events carry instants in 2000-2999 only; the other tests' lots expire from mid-2002 on.
AS_OF = datetime(2001, 1, 1, tzinfo=UTC)


@pytest.fixture
async def database(stack: Stack) -> AsyncIterator[AsyncEngine]:
    stack.migrate("points")
    async with engine_for(stack, "points") as engine:
        yield engine


@pytest.fixture
async def seeded(database: AsyncEngine) -> AsyncIterator[tuple[str, datetime]]:
    prefix = f"{PREFIX}{uuid.uuid4().hex[:8]}-"
    async with database.begin() as conn:
        await clean(conn, "points", PREFIX)  # what an interrupted run left
        await seed_points(conn, prefix, MEMBERS, AS_OF)
    try:
        yield prefix, AS_OF
    finally:
        async with database.begin() as conn:
            await clean(conn, "points", prefix)


async def counts(database: AsyncEngine, sql: str, prefix: str) -> tuple[int, ...]:
    async with database.connect() as conn:
        row = (
            await conn.execute(sa.text(sql), {"low": prefix, "high": prefix + "\U0010ffff"})
        ).one()
    return tuple(int(value or 0) for value in row)


async def test_every_lot_in_the_window_is_warned_of_once_over_many_chunks(
    database: AsyncEngine, seeded: tuple[str, datetime]
) -> None:
    prefix, as_of = seeded
    job = WarnExpiring(Program(), SystemClock(), chunk_size=CHUNK)

    first = await job.run(database, as_of)
    again = await job.run(database, as_of)

    assert (first["warnings"], again["warnings"]) == (MEMBERS, 0)
    # The lots expiring 10 days on, never the one expired before `as_of`.
    assert await counts(
        database,
        "SELECT count(*), count(*) FILTER (WHERE lot_id LIKE '%/new') FROM expiry_warnings "
        "WHERE lot_id >= :low AND lot_id < :high",
        prefix,
    ) == (MEMBERS, MEMBERS)


async def test_every_expired_lot_is_expired_once_of_what_it_held_over_many_chunks(
    database: AsyncEngine, seeded: tuple[str, datetime]
) -> None:
    prefix, as_of = seeded
    job = ExpirePoints(SystemClock(), chunk_size=CHUNK)

    first = await job.run(database, as_of)
    again = await job.run(database, as_of)

    assert (first["expired_lots"], again["expired_lots"]) == (MEMBERS, 0)
    # 50 points each, less the 20 redeemed by every tenth member; nothing left in any lot.
    assert await counts(
        database,
        "SELECT count(*), -sum(points), count(DISTINCT customer_id) FROM ledger_entries "
        "WHERE kind = 'expire' AND customer_id >= :low AND customer_id < :high",
        prefix,
    ) == (MEMBERS, 50 * MEMBERS - 20 * (MEMBERS // 10), MEMBERS)
    assert await counts(
        database,
        "SELECT count(*) FROM ledger_entries l WHERE l.customer_id >= :low "
        "AND l.customer_id < :high AND l.entry_id LIKE '%/old' AND l.points > "
        "(SELECT coalesce(sum(a.points), 0) FROM allocations a WHERE a.lot_id = l.entry_id)",
        prefix,
    ) == (0,)
