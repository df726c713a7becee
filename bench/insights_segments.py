"""Insights' `segments` job at 100,000 members: the quintiles and every member's segments.

    python -m bench.insights_segments [--members 100000] [--purchases-per-member 10]

Makes a scratch database `fedelta_bench_insights` on the stack's PostgreSQL server (through
`deploy/local/postgres.sh psql`, owned by the insights role, dropped at the end), migrates it
with insights' migrations and seeds it in a few `INSERT … SELECT … generate_series` statements:
`--members` members enrolled over two years (every twentieth referred by the one before), on
average `--purchases-per-member` purchases each over 500 days at five partners, points earned
and redeemed, perks, NPS feedback and tier changes for some. Then it runs the job in this
process, as the service runs it (`SegmentsJob`, chunks of 1,000), as of one instant twice: the
first run puts every member in their segments (an outbox row per entry), the second finds
nothing to change. It prints each run's seconds, members/s, this process's CPU seconds and its
peak resident memory, and beside them the raw limits of the same run on the same server: one
INSERT of `--members` rows into a TEMP table, and one aggregate of every purchase per member
(what any recompute that reads every purchase pays at least).

The stack is the one deploy/local/stack.sh runs for FEDELTA_STATE_DIR and FEDELTA_PG_PORT
(`make up`'s by default; the test stack's with its variables). Exits 1 when a run's summary is
not what the seed implies.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.insights.domain.model import Rules
from services.insights.jobs import SegmentsJob
from shared.clock import FixedClock
from shared.storage.migrations import upgrade_to_head

REPO = Path(__file__).resolve().parents[1]
MIGRATIONS = REPO / "services" / "insights" / "migrations"
DATABASE = "fedelta_bench_insights"
AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
T = TypeVar("T")

_SEED = (
    "INSERT INTO members (customer_id, partner_id, enrolled_at, referred_by, profile_version)"
    " SELECT 'm-' || lpad(i::text, 7, '0'), 'p' || (i % 5),"
    " CAST(:as_of AS timestamptz) - (i % 700) * interval '1 day',"
    " CASE WHEN i % 20 = 0 THEN 'm-' || lpad((i - 1)::text, 7, '0') END, 1"
    " FROM generate_series(1, CAST(:n AS bigint)) AS i",
    "INSERT INTO purchases (purchase_key, customer_id, purchase_id, partner_id, store_id,"
    " occurred_at, total)"
    " SELECT 'p' || (j % 5) || ':' || j,"
    " 'm-' || lpad((1 + (j * 7919) % CAST(:n AS bigint))::text, 7, '0'),"
    " j::text, 'p' || (j % 5), 's' || (j % 3),"
    " CAST(:as_of AS timestamptz) - ((j * 37) % 500) * interval '1 day'"
    " - (j % 24) * interval '1 hour',"
    " 5 + (j % 97) FROM generate_series(1, CAST(:n AS bigint) * CAST(:per AS bigint)) AS j",
    "INSERT INTO campaign_purchases (customer_id, purchase_id)"
    " SELECT customer_id, purchase_id FROM purchases WHERE purchase_id::bigint % 4 = 0",
    "INSERT INTO points_movements (event_id, customer_id, kind, points, occurred_at)"
    " SELECT 'e' || j, 'm-' || lpad((1 + j % CAST(:n AS bigint))::text, 7, '0'),"
    " CASE WHEN j % 3 = 0 THEN 'redeemed' ELSE 'earned' END,"
    " CASE WHEN j % 3 = 0 THEN -100 ELSE 80 END,"
    " CAST(:as_of AS timestamptz) - (j % 300) * interval '1 day'"
    " FROM generate_series(1, CAST(:n AS bigint) * 3) AS j",
    "INSERT INTO perks (perk_key, customer_id, kind, used_at)"
    " SELECT 'grant:' || j, 'm-' || lpad((1 + (j * 7) % CAST(:n AS bigint))::text, 7, '0'),"
    " 'stamp_card',"
    " CAST(:as_of AS timestamptz) - (j % 200) * interval '1 day'"
    " FROM generate_series(1, CAST(:n AS bigint) / 2) AS j",
    "INSERT INTO feedback (feedback_key, customer_id, partner_id, kind, score, given_at)"
    " SELECT 'p1:' || i, 'm-' || lpad(i::text, 7, '0'), 'p1', 'nps', i % 11,"
    " CAST(:as_of AS timestamptz) - (i % 100) * interval '1 day'"
    " FROM generate_series(1, CAST(:n AS bigint), 10) AS i",
    "INSERT INTO tier_history (customer_id, effective_at, tier)"
    " SELECT 'm-' || lpad(i::text, 7, '0'),"
    " CAST(:as_of AS timestamptz) - (i % 90) * interval '1 day',"
    " (ARRAY['silver', 'gold', 'platinum'])[1 + i % 3]"
    " FROM generate_series(1, CAST(:n AS bigint), 4) AS i",
)
_RAW_INSERT = (
    "CREATE TEMP TABLE raw_insert (customer_id text, since timestamptz, reasons text[])",
    "INSERT INTO raw_insert SELECT 'm-' || i, now(), ARRAY['x'] FROM generate_series(1, :n) i",
)
_RAW_AGGREGATE = (
    "SELECT count(*) FROM (SELECT customer_id, count(*), sum(total), max(occurred_at)"
    " FROM purchases GROUP BY customer_id) per_member"
)


def admin_psql(sql: str) -> None:
    """As the cluster's superuser (deploy/local/postgres.sh psql), the SQL through stdin."""
    subprocess.run(  # noqa: S603  # our own script, arguments built here
        [str(REPO / "deploy" / "local" / "postgres.sh"), "psql", "-q", "-v", "ON_ERROR_STOP=1"],
        input=sql,
        text=True,
        check=True,
        capture_output=True,
    )


def scratch_url() -> str:
    dsn = subprocess.run(  # noqa: S603  # our own script, arguments built here
        [str(REPO / "deploy" / "local" / "postgres.sh"), "dsn", "insights"],
        text=True,
        check=True,
        capture_output=True,
        env=os.environ,
    ).stdout.strip()
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{DATABASE}"


async def timed(work: Callable[[], Awaitable[T]]) -> tuple[T, float, float]:
    """The result, wall seconds and this process's CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = await work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def seed(engine: AsyncEngine, members: int, per: int) -> None:
    async with engine.begin() as conn:
        for statement in _SEED:
            params = {"n": members, "per": per, "as_of": AS_OF}
            wanted = {name: value for name, value in params.items() if f":{name}" in statement}
            await conn.execute(sa.text(statement), wanted)
    # What autovacuum does to insert-only tables in a running system: statistics, and the
    # visibility map that lets an index-only scan skip the heap.
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text("VACUUM (ANALYZE)"))


async def raw_limits(engine: AsyncEngine, members: int) -> dict[str, float]:
    async def insert() -> None:
        async with engine.begin() as conn:
            await conn.execute(sa.text(_RAW_INSERT[0]))
            await conn.execute(sa.text(_RAW_INSERT[1]), {"n": members})

    async def aggregate() -> None:
        async with engine.connect() as conn:
            await conn.execute(sa.text(_RAW_AGGREGATE))

    _, insert_s, _ = await timed(insert)
    _, aggregate_s, _ = await timed(aggregate)
    return {"insert_rows_s": insert_s, "aggregate_purchases_s": aggregate_s}


async def bench(members: int, per: int) -> int:
    url = scratch_url()
    admin_psql(f"DROP DATABASE IF EXISTS {DATABASE}; CREATE DATABASE {DATABASE} OWNER insights;")
    try:
        await asyncio.to_thread(upgrade_to_head, MIGRATIONS, url)
        engine = create_async_engine(url, pool_size=2)
        try:
            return await _measure(engine, members, per)
        finally:
            await engine.dispose()
    finally:
        admin_psql(f"DROP DATABASE IF EXISTS {DATABASE};")


async def _measure(engine: AsyncEngine, members: int, per: int) -> int:
    _, seed_s, _ = await timed(lambda: seed(engine, members, per))
    print(f"seeded {members:,} members, ~{members * per:,} purchases in {seed_s:.1f} s")
    job = SegmentsJob(FixedClock(AS_OF), Rules())
    rss_before = peak_rss_mb()
    runs: list[dict[str, Any]] = []
    for label in ("first run", "again"):
        summary, wall, cpu = await timed(lambda: job.run(engine, AS_OF))
        runs.append(summary)
        print(
            f"segments job, {label}: {wall:.1f} s ({summary['members'] / wall:,.0f} members/s),"
            f" {cpu:.1f} s CPU here, entered {summary['entered']:,}, left {summary['left']:,},"
            f" peak RSS {peak_rss_mb():.0f} MB (before: {rss_before:.0f} MB)"
        )
    raw = await raw_limits(engine, members)
    print(
        f"raw limits: INSERT of {members:,} rows {raw['insert_rows_s']:.2f} s;"
        f" one aggregate of every purchase per member {raw['aggregate_purchases_s']:.2f} s"
    )
    first, again = runs
    sound = first["members"] == members and first["entered"] >= members and again["entered"] == 0
    if not sound:
        print(f"unexpected summaries: {runs}", file=sys.stderr)
    return 0 if sound else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--purchases-per-member", type=int, default=10)
    args = parser.parse_args(argv)
    return asyncio.run(bench(args.members, args.purchases_per_member))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
