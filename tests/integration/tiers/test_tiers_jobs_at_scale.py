"""`warn-downgrades` and `review-tiers` over a few thousand members on the real database, in
chunks that do not divide them evenly: each member warned once and reviewed once, and a
second run as of the same instant does nothing. The members are seeded as the benchmark seeds
them (bench.jobs: gold, a review 10 days after the instant, spend for silver at most), as of
an instant before any other test's data, and deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.jobs import clean, seed_tiers
from services.tiers.bootstrap import configured_programs
from services.tiers.handlers import review_tiers, warn_downgrades
from services.tiers.jobs import REVIEW_TIERS, WARN_DOWNGRADES, ChunkedTierJob
from services.tiers.settings import TiersSettings
from shared.clock import SystemClock

MEMBERS = 3000
CHUNK = 700
PREFIX = "jobs-at-scale-"
# Events carry instants in 2000-2999 only; the other tests' reviews come from mid-2002 on.
AS_OF = datetime(2001, 1, 1, tzinfo=UTC)
REVIEW_AT = AS_OF + timedelta(days=10)


@pytest.fixture
async def seeded(engine: AsyncEngine) -> AsyncIterator[str]:
    prefix = f"{PREFIX}{uuid.uuid4().hex[:8]}-"
    async with engine.begin() as conn:
        await clean(conn, "tiers", PREFIX)  # what an interrupted run left
        await seed_tiers(conn, prefix, MEMBERS, AS_OF)
    try:
        yield prefix
    finally:
        async with engine.begin() as conn:
            await clean(conn, "tiers", prefix)


async def counts(engine: AsyncEngine, sql: str, prefix: str) -> tuple[int, ...]:
    bounds = {"low": prefix, "high": prefix + "\U0010ffff", "review_at": REVIEW_AT}
    async with engine.connect() as conn:
        row = (await conn.execute(sa.text(sql), bounds)).one()
    return tuple(int(value or 0) for value in row)


async def test_each_member_is_warned_then_reviewed_once_over_many_chunks(
    engine: AsyncEngine, settings: TiersSettings, seeded: str
) -> None:
    programs, clock = configured_programs(settings), SystemClock()
    warn = ChunkedTierJob(
        WARN_DOWNGRADES, warn_downgrades, "warnings", programs, clock, chunk_size=CHUNK
    )
    review = ChunkedTierJob(
        REVIEW_TIERS, review_tiers, "downgrades", programs, clock, chunk_size=CHUNK
    )

    warned, warned_again = await warn.run(engine, AS_OF), await warn.run(engine, AS_OF)
    reviewed, reviewed_again = (
        await review.run(engine, REVIEW_AT),
        await review.run(engine, REVIEW_AT),
    )

    assert (warned["customers"], warned["warnings"]) == (MEMBERS, MEMBERS)
    assert (warned_again["customers"], warned_again["warnings"]) == (0, 0)
    assert (reviewed["customers"], reviewed["downgrades"]) == (MEMBERS, MEMBERS)
    assert (reviewed_again["customers"], reviewed_again["downgrades"]) == (0, 0)
    assert await counts(
        engine,
        "SELECT count(*), count(DISTINCT customer_id) FROM downgrade_warnings "
        "WHERE customer_id >= :low AND customer_id < :high AND review_at = :review_at",
        seeded,
    ) == (MEMBERS, MEMBERS)
    assert await counts(
        engine,
        "SELECT count(*) FILTER (WHERE tier = 'silver'), "
        "count(*) FILTER (WHERE review_at > :review_at) FROM customers "
        "WHERE customer_id >= :low AND customer_id < :high",
        seeded,
    ) == (MEMBERS, MEMBERS)
    assert await counts(
        engine,
        "SELECT count(*), count(DISTINCT customer_id) FROM tier_history "
        "WHERE customer_id >= :low AND customer_id < :high AND direction = 'down'",
        seeded,
    ) == (MEMBERS, MEMBERS)
