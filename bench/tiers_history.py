"""Tiers' per-purchase cost against a member's history (issue 24), the batch handler alone.

    python -m bench.tiers_history --database-url URL [--schema NAME] [--members 200]
                                  [--history 1000] [--purchases 5] [--batch 500]

Runs `services.tiers.handlers.apply_batch` in-process on the real repositories, as the
consumer does (one transaction per batch), on a PostgreSQL tiers database: no Kafka, no
parsing, no outbox (the events a batch emits are collected in memory), so the figure is the
part of the cost that a member's history can change. `--members` members first get `--history`
purchases each, spread over the past 300 days (written set-based, not timed), then
`--purchases` new purchases each, in batches of `--batch` events, are applied and timed.
With `--schema`, the tiers tables are made there from `services.tiers.adapters.tables` (the
code on PYTHONPATH: an older tree measures the code before a change), else the database's
own (migrated) tables are used. Members are named afresh on each run; nothing is deleted.
Prints the purchases applied, the seconds, and the microseconds per purchase.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.tiers.adapters import tables
from services.tiers.adapters.repositories.consumer import consumer_repository
from services.tiers.domain.model import Program
from services.tiers.handlers import Context, apply_batch
from shared.messaging import events
from shared.messaging.events import CloudEvent, new_event
from shared.messaging.outbox import CollectingSink

PARTNER = "bench"

_SEED_CUSTOMERS = sa.text(
    "INSERT INTO customers (customer_id, tier, since, review_at) "
    "SELECT :prefix || n, 'bronze', :since, :review_at FROM generate_series(1, :members) AS n"
)
# 0.01 each: a history of 1,000 purchases crosses no tier.
_SEED_HISTORY = sa.text(
    "INSERT INTO qualifying_activity (activity_id, customer_id, amount, occurred_at, visits) "
    "SELECT 'purchase:bench:' || :prefix || m || '-h' || h, :prefix || m, 0.01, "
    "CAST(:now AS timestamptz) - make_interval(mins => 432 * h + m), 1 "
    "FROM generate_series(1, :members) AS m, generate_series(1, :history) AS h"
)


def purchase(customer_id: str, at: datetime) -> CloudEvent:
    payload = events.PurchaseCompleted(
        purchase_id=str(uuid.uuid4()),
        partner_id=PARTNER,
        customer_id=customer_id,
        occurred_at=at,
        currency="EUR",
        total=Decimal("12.50"),
    )
    return new_event(payload, source=f"ingest/{PARTNER}", subject=customer_id, time=at)


async def prepare(engine: AsyncEngine, schema: str | None) -> None:
    if schema is None:
        return
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await conn.run_sync(tables.metadata.create_all)


async def seed(engine: AsyncEngine, prefix: str, args: argparse.Namespace, now: datetime) -> None:
    since = now - timedelta(days=400)
    async with engine.begin() as conn:
        await conn.execute(
            _SEED_CUSTOMERS,
            {
                "prefix": prefix,
                "members": args.members,
                "since": since,
                "review_at": now + timedelta(days=30),
            },
        )
        if args.history:
            await conn.execute(
                _SEED_HISTORY,
                {"prefix": prefix, "members": args.members, "history": args.history, "now": now},
            )


async def timed(engine: AsyncEngine, prefix: str, args: argparse.Namespace, now: datetime) -> float:
    """Seconds to apply the new purchases, in order, batch by batch."""
    backlog = [
        purchase(f"{prefix}{m}", now + timedelta(seconds=n * args.members + m))
        for n in range(args.purchases)
        for m in range(1, args.members + 1)
    ]
    program, sink = Program(), CollectingSink()
    started = time.perf_counter()
    for first in range(0, len(backlog), args.batch):
        async with engine.begin() as conn:
            context = Context(consumer_repository(conn), sink, program, now)
            await apply_batch(backlog[first : first + args.batch], context)
    return time.perf_counter() - started


async def run(args: argparse.Namespace) -> int:
    options = {"server_settings": {"search_path": args.schema}} if args.schema else {}
    engine = create_async_engine(args.database_url, connect_args=options, pool_size=2)
    try:
        await prepare(engine, args.schema)
        prefix, now = f"bench-th-{uuid.uuid4().hex[:8]}-", datetime.now(UTC)
        await seed(engine, prefix, args, now)
        seconds = await timed(engine, prefix, args, now)
    finally:
        await engine.dispose()
    count = args.members * args.purchases
    print(
        f"history {args.history}: {count} purchases in {seconds:.2f} s, "
        f"{seconds / count * 1e6:.0f} us per purchase"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.tiers_history",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--schema", help="make the tiers tables in this schema and use them")
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--history", type=int, default=1000, help="earlier purchases each")
    parser.add_argument("--purchases", type=int, default=5, help="timed purchases each")
    parser.add_argument("--batch", type=int, default=500, help="events per batch")
    args = parser.parse_args(argv)
    if min(args.members, args.purchases, args.batch) < 1 or args.history < 0:
        parser.error("--members, --purchases and --batch >= 1, --history >= 0")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
