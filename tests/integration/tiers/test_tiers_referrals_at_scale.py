"""`qualify-referrals` over a few thousand referrals on the real database, in chunks that do
not divide them evenly: each referral decided once, each referrer who reaches gold by two
friends upgraded once, and a second run as of the same instant does nothing. Seeded as of an
instant before any other test's data (like `test_tiers_jobs_at_scale`), deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bench.jobs import clean
from services.tiers.domain.model import Program, TierDefinition
from services.tiers.handlers import qualify_referrals
from services.tiers.jobs import QUALIFY_REFERRALS, ChunkedTierJob
from services.tiers.programs import ProgramSource
from shared.clock import SystemClock

REFERRERS = 1500  # two friends each: 3,000 referrals
CHUNK = 700
PREFIX = "referrals-at-scale-"
AS_OF = datetime(2001, 1, 1, tzinfo=UTC)
WINDOW_DAYS = 14
PROGRAM = Program(
    tiers=(
        TierDefinition("bronze", Decimal(0)),
        TierDefinition("silver", Decimal(500)),
        TierDefinition("gold", Decimal(2000), referrals=2),
        TierDefinition("platinum", Decimal(5000)),
    ),
    referral_return_window_days=WINDOW_DAYS,
)

# Referrer x-n (bronze, no review due) and their friends f-n-1 and f-n-2, each with a first
# purchase 20 days before AS_OF; every fifth referrer's second friend refunded it wholly
# within the window (a disqualified referral: that referrer stays bronze).
_SEED = (
    "INSERT INTO customers (customer_id, tier, since, review_at, enrolled_at) "
    "SELECT :prefix || who || n, 'bronze', :since, :review_at, :since "
    "FROM generate_series(1, :referrers) AS n, "
    "unnest(ARRAY['x-', 'f-1-', 'f-2-']) AS who",
    "INSERT INTO qualifying_activity (activity_id, customer_id, amount, occurred_at, visits) "
    "SELECT 'purchase:demo:' || :prefix || 'f-' || k || '-' || n, "
    ":prefix || 'f-' || k || '-' || n, 20, :bought_at, 1 "
    "FROM generate_series(1, :referrers) AS n, generate_series(1, 2) AS k",
    "INSERT INTO qualifying_activity "
    "(activity_id, customer_id, amount, occurred_at, visits, refunded_activity_id) "
    "SELECT 'refund:demo:' || :prefix || n, :prefix || 'f-2-' || n, -20, :refunded_at, -1, "
    "'purchase:demo:' || :prefix || 'f-2-' || n "
    "FROM generate_series(5, :referrers, 5) AS n",
    "INSERT INTO referrals (referred_id, referrer_id, first_purchase_id, first_purchase_at, "
    "status) "
    "SELECT :prefix || 'f-' || k || '-' || n, :prefix || 'x-' || n, "
    "'purchase:demo:' || :prefix || 'f-' || k || '-' || n, :bought_at, 'pending' "
    "FROM generate_series(1, :referrers) AS n, generate_series(1, 2) AS k",
)


@pytest.fixture
async def seeded(engine: AsyncEngine) -> AsyncIterator[str]:
    prefix = f"{PREFIX}{uuid.uuid4().hex[:8]}-"
    bought_at = AS_OF - timedelta(days=20)
    params = {
        "prefix": prefix,
        "referrers": REFERRERS,
        "since": AS_OF - timedelta(days=400),
        "review_at": AS_OF + timedelta(days=200),
        "bought_at": bought_at,
        "refunded_at": bought_at + timedelta(days=3),
    }
    async with engine.begin() as conn:
        await _clean(conn, PREFIX)  # what an interrupted run left
        for statement in _SEED:
            await conn.execute(sa.text(statement), params)
    try:
        yield prefix
    finally:
        async with engine.begin() as conn:
            await _clean(conn, prefix)


async def _clean(conn: AsyncConnection, prefix: str) -> None:
    await conn.execute(
        sa.text("DELETE FROM referrals WHERE referred_id >= :low AND referred_id < :high"),
        {"low": prefix, "high": prefix + "\U0010ffff"},
    )
    await clean(conn, "tiers", prefix)


async def counts(engine: AsyncEngine, sql: str, prefix: str) -> tuple[int, ...]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(sa.text(sql), {"low": prefix, "high": prefix + "\U0010ffff"})
        ).one()
    return tuple(int(value or 0) for value in row)


async def test_each_referral_is_decided_and_each_referrer_upgraded_once_over_many_chunks(
    engine: AsyncEngine, seeded: str
) -> None:
    job = ChunkedTierJob(
        QUALIFY_REFERRALS,
        qualify_referrals,
        "upgrades",
        ProgramSource(PROGRAM),
        SystemClock(),
        chunk_size=CHUNK,
    )
    first, again = await job.run(engine, AS_OF), await job.run(engine, AS_OF)

    disqualified = REFERRERS // 5
    assert (first["customers"], first["upgrades"]) == (2 * REFERRERS, REFERRERS - disqualified)
    assert (again["customers"], again["upgrades"]) == (0, 0)
    assert await counts(
        engine,
        "SELECT count(*) FILTER (WHERE status = 'qualified'), "
        "count(*) FILTER (WHERE status = 'disqualified'), "
        "count(*) FILTER (WHERE status = 'pending') FROM referrals "
        "WHERE referred_id >= :low AND referred_id < :high",
        seeded,
    ) == (2 * REFERRERS - disqualified, disqualified, 0)
    assert await counts(
        engine,
        "SELECT count(*), sum(referrals) FROM qualifying_activity "
        "WHERE customer_id >= :low AND customer_id < :high AND activity_id LIKE 'referral:%'",
        seeded,
    ) == (2 * REFERRERS - disqualified, 2 * REFERRERS - disqualified)
    gold_at = AS_OF - timedelta(days=20 - WINDOW_DAYS)
    assert await counts(
        engine,
        "SELECT count(*) FILTER (WHERE tier = 'gold'), count(*) FILTER (WHERE tier = 'bronze') "
        "FROM customers WHERE customer_id >= :low AND customer_id < :high "
        "AND customer_id LIKE '%x-%'",
        seeded,
    ) == (REFERRERS - disqualified, disqualified)
    async with engine.connect() as conn:
        since = (
            await conn.execute(
                sa.text(
                    "SELECT DISTINCT since FROM customers WHERE tier = 'gold' "
                    "AND customer_id >= :low AND customer_id < :high"
                ),
                {"low": seeded, "high": seeded + "\U0010ffff"},
            )
        ).scalars()
        assert list(since) == [gold_at]  # dated at the window's end, not at the run
    assert await counts(
        engine,
        "SELECT count(*), count(DISTINCT customer_id) FROM tier_history "
        "WHERE customer_id >= :low AND customer_id < :high AND reason = 'qualifying_referrals'",
        seeded,
    ) == (REFERRERS - disqualified, REFERRERS - disqualified)
