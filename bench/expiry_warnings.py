"""Expiry warnings merged at a member base's scale: notifications through a points job's burst.

    python -m bench.expiry_warnings [--customers 100000] [--lots 2] [--sample 200]

Points' `warn-expiring` job emits one `fedelta.points.expiring.v1` per lot, for every member
with lots expiring in its horizon, all in one run. This writes that burst straight onto
`fedelta.points.v1` (key = customer_id, pre-encoded, every send in flight): `--lots`
warnings per customer for `--customers` customers, lots of one customer expiring on one UTC
day 30 days ahead (the customers have no profile, so their day is UTC's), first every
customer's first lot, then every second one, so that most merges join a message an earlier
batch created (the load, lock and rewrite path). The clock starts at the first send; the
figure is the time until notifications' consumer has finished with every warning
(`fedelta_events_consumed_total{topic="fedelta.points.v1"}` on its `/metrics`), as warnings/s
and customers/s.
The result is checked in notifications' database: exactly one `points_expiring` message per
customer, and for `--sample` customers the total of their lots and the count of warnings.
Then, in the same run, the raw limits of the machine for the same work:
  kafka: a fresh consumer group reading the same records and `json.loads`-parsing each;
  postgres: asyncpg inserting ledger-sized rows, 1,000 per multi-row statement, into a TEMP
            table of notifications' database;
and notifications' rate as a fraction of both.
Exits 1 when the consumer did not finish within `--deadline`, or a customer has no message,
two, or a wrong total.

The messages wait for their window (a day) and then for a contact that never comes; they are
left in the dev stack's database, as the other benchmarks leave their effects.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from bench.consume_throughput import (
    admin_connection,
    end_offsets,
    produce,
    raw_kafka,
    raw_postgres,
)
from bench.metrics import consumed, finished, wait_quiet
from fedelta_client.devenv import REPO, DevEnv
from shared.messaging import events
from shared.messaging.topics import POINTS

SOURCE = "bench.expiry_warnings"


def stack_values() -> dict[str, str]:
    dev_env = Path(os.environ.get("FEDELTA_DEV_ENV", REPO / ".fedelta" / "dev.env"))
    path = dev_env.parent / "services.env"
    if not path.exists():
        raise SystemExit(f"{path} not found: start the stack first with `make up`")
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def burst(
    customers: list[str], lots: int, now: datetime
) -> tuple[list[tuple[bytes, bytes]], dict[str, int]]:
    """The warnings, lot by lot across all customers, and each customer's total."""
    day = datetime.combine((now + timedelta(days=30)).date(), datetime.min.time(), tzinfo=UTC)
    records: list[tuple[bytes, bytes]] = []
    totals = dict.fromkeys(customers, 0)
    for lot in range(lots):
        for index, customer in enumerate(customers):
            points = 1 + (index * 7 + lot * 13) % 500
            expires_at = day + timedelta(hours=1 + lot * 20 // max(lots, 1), minutes=index % 60)
            event = events.new_event(
                events.PointsExpiring(customer_id=customer, points=points, expires_at=expires_at),
                source=SOURCE,
                subject=customer,
                time=now,
            )
            records.append((customer.encode(), event.to_bytes()))
            totals[customer] += points
    return records, totals


async def follow(
    http: httpx.AsyncClient, url: str, baseline: int, expected: int, started: float, within: float
) -> float | None:
    """Seconds from `started` until the consumer finished `expected` more warnings."""
    deadline = started + within
    while time.perf_counter() < deadline:
        if finished(await consumed(http, url, POINTS)) - baseline >= expected:
            return time.perf_counter() - started
        await asyncio.sleep(0.25)
    return None


async def check(dsn: str, prefix: str, totals: dict[str, int], lots: int, sample: int) -> list[str]:
    """What is wrong with the merged messages in notifications' database."""
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT customer_id, count(*) AS messages, max((params->>'points')::int) AS points,"
            " max((params->>'warnings')::int) AS warnings FROM deliveries"
            " WHERE customer_id LIKE $1 AND template = 'points_expiring' GROUP BY customer_id",
            prefix + "%",
        )
    finally:
        await connection.close()
    found = {row["customer_id"]: row for row in rows}
    problems = [f"{len(totals) - len(found)} customer(s) without a message"] * (
        len(found) != len(totals)
    )
    problems += [f"{c}: {r['messages']} messages" for c, r in found.items() if r["messages"] != 1]
    for customer in list(totals)[:: max(1, len(totals) // max(sample, 1))]:
        row = found.get(customer)
        if row is not None and (row["points"], row["warnings"]) != (totals[customer], lots):
            problems.append(
                f"{customer}: {row['points']} points in {row['warnings']} warning(s),"
                f" sent {totals[customer]} in {lots}"
            )
    return problems[:10]


async def run(args: argparse.Namespace) -> int:
    values = stack_values()
    bootstrap = admin_connection(values["FEDELTA_NOTIFICATIONS_KAFKA_BOOTSTRAP_SERVERS"])
    dsn = values["FEDELTA_NOTIFICATIONS_DATABASE_URL"].replace(
        "postgresql+asyncpg://", "postgresql://", 1
    )
    url = DevEnv.load().notifications_url
    run_id = uuid.uuid4().hex[:8]
    prefix = f"bench-ew-{run_id}-"
    customers = [f"{prefix}{i:06d}" for i in range(args.customers)]
    records, totals = burst(customers, args.lots, datetime.now(UTC))
    async with httpx.AsyncClient(timeout=30.0) as http:
        await wait_quiet(http, {"notifications": url}, (POINTS,))
        baseline = finished(await consumed(http, url, POINTS))
        start = await end_offsets(bootstrap, POINTS)
        started = time.perf_counter()
        send_s = await produce(bootstrap, POINTS, records)
        done_s = await follow(http, url, baseline, len(records), started, args.deadline)
    if done_s is None:
        print(f"notifications did not finish {len(records)} warnings within {args.deadline} s")
        return 1
    problems = await check(dsn, prefix, totals, args.lots, args.sample)
    kafka = await raw_kafka(bootstrap, start, await end_offsets(bootstrap, POINTS))
    postgres = await raw_postgres(dsn, 50_000)
    rate = len(records) / done_s
    print(f"expiry warnings: {len(records):,} for {len(customers):,} customers ({args.lots} each)")
    print(f"  written onto {POINTS} in {send_s:.1f} s")
    print(
        f"  notifications: all merged in {done_s:.1f} s: {rate:,.0f} warnings/s,"
        f" {len(customers) / done_s:,.0f} customers/s"
    )
    print(f"  raw limits: kafka {kafka:,.0f} msgs/s, postgres {postgres:,.0f} rows/s")
    print(f"  notifications at {rate / kafka:.0%} of kafka and {rate / postgres:.0%} of postgres")
    print(f"  check: {problems or 'one message per customer, totals right'}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--lots", type=int, default=2)
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--deadline", type=float, default=900.0)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
