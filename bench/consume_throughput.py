"""Consumer throughput: how fast points, tiers and notifications get through a purchase backlog.

    python -m bench.consume_throughput [--customers 1000] [--purchases 15000] [--sample 50]

Ingest is not involved: the customers are enrolled by writing `CustomerEnrolled` events
straight onto `fedelta.customers.v1` (so ingest does not know them, which this benchmark does
not need), and, once points and tiers have applied every enrolment, `--purchases` valid
`PurchaseCompleted` CloudEvents (key = customer_id) are written straight onto
`fedelta.purchases.v1`, pre-encoded and with every send in flight at once.
The clock starts at the first send: from then on the consumers can start on them. Each
service's progress is read from `fedelta_events_consumed_total{topic="fedelta.purchases.v1"}`
on its `/metrics` every `--poll` seconds, and its figure is the time from the first send until
it has finished with every purchase, and purchases/s over that time. Notifications subscribes
to the purchases topic but acts on none of its types yet: its figure is the rate at which it
passes over them (outcome `ignored`).
Effects are checked over HTTP for `--sample` customers: the points ledger holds exactly one
entry per purchase sent to the customer, and the tiers qualifying spend is the sum of their
totals.
Then, in the same run, the raw limits of the machine for the same work:
  kafka: a fresh consumer group reading the same records and `json.loads`-parsing each;
  postgres: asyncpg inserting ledger-sized rows (8 columns) into a TEMP table of the points
            database, 1,000 per multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING`, one
            transaction per batch, as a consumer's batch does;
and each service's rate as a fraction of both.
Exits 1 when a consumer did not finish within `--deadline`, dead-lettered a purchase, or an
effect is missing.

Reads URLs from .fedelta/dev.env (or FEDELTA_DEV_ENV) through `fedelta_client.DevEnv`, and the
Kafka bootstrap servers and the points database URL from the services.env beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.metrics import consumed, finished, wait_quiet
from fedelta_client import StackClient
from fedelta_client.devenv import REPO, DevEnv
from shared.messaging import events
from shared.messaging.topics import CUSTOMERS, PARTITIONS, PURCHASES

REQUEST_TIMEOUT_S = 30.0
SOURCE = "bench.consume_throughput"
PARTNER_ID = "demo"
RAW_BATCH = 1000
LEDGER_PAGE = 199  # the points ledger answers at most 200 entries a page; one is the welcome


@dataclass(frozen=True)
class StackSettings:
    kafka_bootstrap: str
    points_database_dsn: str  # plain libpq form, for asyncpg


def stack_settings() -> StackSettings:
    """From the services.env of the stack whose dev.env the benchmarks use."""
    dev_env = Path(os.environ.get("FEDELTA_DEV_ENV", REPO / ".fedelta" / "dev.env"))
    path = dev_env.parent / "services.env"
    if not path.exists():
        raise SystemExit(f"{path} not found: start the stack first with `make up`")
    values = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return StackSettings(
        kafka_bootstrap=values["FEDELTA_POINTS_KAFKA_BOOTSTRAP_SERVERS"],
        points_database_dsn=values["FEDELTA_POINTS_DATABASE_URL"].replace(
            "postgresql+asyncpg://", "postgresql://", 1
        ),
    )


@dataclass
class Backlog:
    records: list[tuple[bytes, bytes]]  # (key, value)
    totals: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    purchase_ids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def enrolments(customers: list[str], now: datetime) -> list[tuple[bytes, bytes]]:
    return [
        (
            customer.encode(),
            events.new_event(
                events.CustomerEnrolled(
                    customer_id=customer, partner_id=PARTNER_ID, enrolled_at=now, version=1
                ),
                source=SOURCE,
                subject=customer,
                time=now,
            ).to_bytes(),
        )
        for customer in customers
    ]


def purchases(customers: list[str], count: int, run_id: str, now: datetime) -> Backlog:
    backlog = Backlog(records=[])
    for sequence in range(count):
        customer = customers[sequence % len(customers)]
        total = Decimal(f"{10 + sequence % 90}.{sequence % 100:02d}")
        purchase_id = f"bench-ct-{run_id}-{sequence}"
        event = events.new_event(
            events.PurchaseCompleted(
                purchase_id=purchase_id,
                partner_id=PARTNER_ID,
                customer_id=customer,
                occurred_at=now,
                currency="EUR",
                total=total,
            ),
            source=SOURCE,
            subject=customer,
            time=now,
        )
        backlog.records.append((customer.encode(), event.to_bytes()))
        backlog.totals[customer] += total
        backlog.purchase_ids[customer].add(purchase_id)
    return backlog


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    """Writes every record with all sends in flight; returns the seconds until all are acked."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )
    await producer.start()
    try:
        started = time.perf_counter()
        sent = [await producer.send(topic, value=value, key=key) for key, value in records]
        await asyncio.gather(*sent)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        offsets: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return offsets
    finally:
        await consumer.stop()


@dataclass
class Progress:
    """One service's consumption of the backlog, from the first send."""

    done_s: float | None = None
    first_s: float | None = None  # when its counter first moved
    outcomes: dict[str, int] = field(default_factory=dict)


async def follow(
    http: httpx.AsyncClient,
    services: dict[str, str],
    baseline: dict[str, int],
    expected: int,
    started: float,
    poll_s: float,
    within_s: float,
) -> dict[str, Progress]:
    progress = {name: Progress() for name in services}
    deadline = started + within_s
    while time.perf_counter() < deadline:
        for name, url in services.items():
            state = progress[name]
            if state.done_s is not None:
                continue
            outcomes = await consumed(http, url, PURCHASES)
            now = time.perf_counter() - started
            moved = finished(outcomes) - baseline[name]
            if moved > 0 and state.first_s is None:
                state.first_s = now
            if moved >= expected:
                state.done_s = now
            state.outcomes = outcomes
        if all(state.done_s is not None for state in progress.values()):
            break
        await asyncio.sleep(poll_s)
    return progress


async def wait_enrolled(
    http: httpx.AsyncClient, services: dict[str, str], baseline: dict[str, int], expected: int
) -> None:
    deadline = time.perf_counter() + 120.0
    while time.perf_counter() < deadline:
        counts = {name: await consumed(http, url, CUSTOMERS) for name, url in services.items()}
        if all(finished(counts[n]) - baseline[n] >= expected for n in services):
            return
        await asyncio.sleep(0.25)
    raise SystemExit("the consumers did not finish the enrolments within 120 s")


async def verify(
    pos: StackClient, backlog: Backlog, sample: list[str], services: dict[str, str]
) -> list[str]:
    """What is wrong with the sampled customers' points ledgers and qualifying spends."""
    problems: list[str] = []
    for customer in sample:
        if "points" in services:
            response = await pos.read(
                f"{pos.env.points_url}/v1/customers/{customer}/ledger?limit={LEDGER_PAGE + 1}"
            )
            if response.status_code != 200:
                problems.append(f"points ledger of {customer}: HTTP {response.status_code}")
            else:
                entries = [e["purchase_id"] for e in response.json()["entries"] if e["purchase_id"]]
                if sorted(entries) != sorted(backlog.purchase_ids[customer]):
                    problems.append(
                        f"points ledger of {customer}: {len(entries)} purchase entries, "
                        f"{len(set(entries))} distinct, {len(backlog.purchase_ids[customer])} sent"
                    )
        if "tiers" in services:
            response = await pos.tier(customer)
            if response.status_code != 200:
                problems.append(f"tier of {customer}: HTTP {response.status_code}")
            elif Decimal(response.json()["qualifying_spend"]) != backlog.totals[customer]:
                problems.append(
                    f"tier of {customer}: qualifying spend {response.json()['qualifying_spend']},"
                    f" purchases total {backlog.totals[customer]}"
                )
    return problems


async def raw_kafka(
    bootstrap: str, start: dict[TopicPartition, int], end: dict[TopicPartition, int]
) -> float:
    """Messages/s for a fresh consumer group reading [start, end) and parsing every value."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        max_poll_records=1000,
        fetch_max_bytes=50 * 1024 * 1024,
        max_partition_fetch_bytes=10 * 1024 * 1024,
    )
    await consumer.start()
    try:
        consumer.assign(list(start))
        for partition, offset in start.items():
            consumer.seek(partition, offset)
        remaining = {tp: end[tp] - start[tp] for tp in start if end[tp] > start[tp]}
        expected = sum(remaining.values())
        if expected == 0:
            raise SystemExit("raw kafka: no records to read")
        parsed = 0
        started = time.perf_counter()
        deadline = started + 120.0
        while remaining and time.perf_counter() < deadline:
            polled = await consumer.getmany(timeout_ms=500, max_records=1000)
            for partition, messages in polled.items():
                for message in messages:
                    if message.offset >= end[partition] or message.value is None:
                        continue
                    json.loads(message.value)
                    parsed += 1
                    remaining[partition] -= 1
                    if remaining[partition] <= 0:
                        del remaining[partition]
        elapsed = time.perf_counter() - started
        if parsed < expected:
            raise SystemExit(f"raw kafka: read {parsed} of {expected} records within 120 s")
        return parsed / elapsed
    finally:
        await consumer.stop()


async def raw_postgres(dsn: str, rows: int) -> float:
    """Rows/s for ledger-sized rows inserted 1,000 per multi-row statement into a TEMP table."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "CREATE TEMP TABLE bench_ledger ("
            " entry_id text PRIMARY KEY, customer_id text NOT NULL, kind text NOT NULL,"
            " points integer NOT NULL, purchase_id text, occurred_at timestamptz NOT NULL,"
            " available_at timestamptz NOT NULL, expires_at timestamptz NOT NULL)"
        )
        now = datetime.now(UTC)
        columns = 8
        placeholders = ", ".join(
            "(" + ", ".join(f"${r * columns + c + 1}" for c in range(columns)) + ")"
            for r in range(RAW_BATCH)
        )
        statement = (  # only numbered placeholders are formatted in: no data
            f"INSERT INTO bench_ledger VALUES {placeholders} "  # noqa: S608
            "ON CONFLICT (entry_id) DO NOTHING RETURNING entry_id"
        )
        batches = []
        for first in range(0, rows - rows % RAW_BATCH, RAW_BATCH):
            values: list[object] = []
            for n in range(first, first + RAW_BATCH):
                values += [f"e-{n}", f"c-{n % 1000}", "earn", n % 100, f"p-{n}", now, now, now]
            batches.append(values)
        started = time.perf_counter()
        inserted = 0
        for values in batches:
            async with connection.transaction():
                inserted += len(await connection.fetch(statement, *values))
        elapsed = time.perf_counter() - started
        if inserted != len(batches) * RAW_BATCH:
            raise SystemExit(f"raw postgres: {inserted} rows inserted, not {rows}")
        return inserted / elapsed
    finally:
        await connection.close()


def consumer_urls(env: DevEnv) -> dict[str, str]:
    return {
        "points": env.points_url,
        "tiers": env.tiers_url,
        "notifications": env.notifications_url,
    }


async def reachable(http: httpx.AsyncClient, services: dict[str, str]) -> dict[str, str]:
    found = {}
    for name, url in services.items():
        try:
            await consumed(http, url, PURCHASES)
            found[name] = url
        except httpx.HTTPError as error:
            print(f"{name}: not reachable ({type(error).__name__}), not measured")
    return found


def report_consumers(
    progress: dict[str, Progress], purchases: int, deadline: float
) -> tuple[dict[str, float], bool]:
    """Prints each consumer's figures; its purchases/s, and whether one failed (not finished
    by the deadline, or something dead-lettered)."""
    failed = False
    rates: dict[str, float] = {}
    for name, state in progress.items():
        outcomes = ", ".join(
            f"{k} {v}" for k, v in sorted(state.outcomes.items()) if k not in ("tombstone",)
        )
        if state.done_s is None:
            failed = True
            print(f"{name:<14} NOT finished within {deadline:g} s (counters: {outcomes})")
            continue
        rates[name] = purchases / state.done_s
        first_s = state.first_s or 0.0
        # From its first count the figure leaves out the time to the first poll's answer.
        steady = purchases / (state.done_s - first_s) if state.done_s > first_s else 0
        print(
            f"{name:<14} all consumed {state.done_s:7.2f} s after the first send: "
            f"{rates[name]:8.0f} purchases/s (first counted at {first_s:.2f} s: "
            f"{steady:.0f}/s from there; counters since the service started: {outcomes})"
        )
        dead = state.outcomes.get("dead_lettered", 0)
        if dead:
            failed = True
            print(f"{name:<14} DEAD-LETTERED {dead} (since the service started)")
    if "notifications" in progress and progress["notifications"].done_s is not None:
        ignored = progress["notifications"].outcomes.get("skipped", 0)
        print(f"{'notifications':<14} passes over purchases (ignored so far: {ignored})")
    return rates, failed


def report_effects(problems: list[str], sample: list[str], services: dict[str, str]) -> bool:
    """Prints what the sampled customers' effects showed; True when one was wrong."""
    checked = [n for n in ("points", "tiers") if n in services]
    if problems:
        print(f"EFFECTS WRONG for {len(problems)} of {len(sample)} sampled customers:")
        for problem in problems[:20]:
            print(f"  {problem}")
        return True
    if checked:
        print(
            f"{'effects':<14} {len(sample)} sampled customers: "
            + " and ".join(
                {"points": "one ledger entry per purchase", "tiers": "spend = Σ totals"}[n]
                for n in checked
            )
            + ": all correct"
        )
    return False


async def report_raw_limits(
    stack: StackSettings,
    start_offsets: dict[TopicPartition, int],
    end: dict[TopicPartition, int],
    purchases: int,
    rates: dict[str, float],
) -> None:
    """The raw Kafka and PostgreSQL limits of this run, and each consumer's share of them."""
    kafka_rate = await raw_kafka(stack.kafka_bootstrap, start_offsets, end)
    postgres_rate = await raw_postgres(stack.points_database_dsn, purchases)
    print(f"{'raw kafka':<14} fresh group reading + json.loads: {kafka_rate:8.0f} messages/s")
    print(
        f"{'raw postgres':<14} asyncpg, 8-column rows, {RAW_BATCH} per INSERT: "
        f"{postgres_rate:8.0f} rows/s"
    )
    for name, rate in rates.items():
        print(
            f"{name:<14} {rate:8.0f}/s = {rate / kafka_rate:6.1%} of raw kafka, "
            f"{rate / postgres_rate:6.1%} of raw postgres"
        )


async def run(args: argparse.Namespace) -> int:
    env = DevEnv.load()
    stack = stack_settings()
    run_id = uuid.uuid4().hex[:8]
    customers = [f"bench-ct-{run_id}-{i}" for i in range(args.customers)]
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as http:
        services = await reachable(http, consumer_urls(env))
        if services:
            await wait_quiet(http, services, (CUSTOMERS, PURCHASES))
        customer_base = {
            n: finished(await consumed(http, u, CUSTOMERS)) for n, u in services.items()
        }
        now = datetime.now(UTC)
        await produce(stack.kafka_bootstrap, CUSTOMERS, enrolments(customers, now))
        await wait_enrolled(http, services, customer_base, len(customers))

        backlog = purchases(customers, args.purchases, run_id, now)
        await wait_quiet(http, services, (CUSTOMERS,), quiet_s=1.0)
        baseline = {n: finished(await consumed(http, u, PURCHASES)) for n, u in services.items()}
        start_offsets = await end_offsets(stack.kafka_bootstrap, PURCHASES)

        started = time.perf_counter()
        produced = asyncio.create_task(produce(stack.kafka_bootstrap, PURCHASES, backlog.records))
        progress = await follow(
            http, services, baseline, args.purchases, started, args.poll, args.deadline
        )
        produce_s = await produced
        end = await end_offsets(stack.kafka_bootstrap, PURCHASES)

        print(
            f"consume throughput: {args.purchases} purchases of {args.customers} customers "
            f"written straight onto {PURCHASES} (customers enrolled straight onto {CUSTOMERS}; "
            f"run {run_id})"
        )
        print(
            f"{'written and acked in':<24} {produce_s:8.2f} s ({args.purchases / produce_s:.0f}/s)"
        )
        rates, failed = report_consumers(progress, args.purchases, args.deadline)

        sample = random.Random(run_id).sample(customers, min(args.sample, len(customers)))
        problems = await verify(StackClient(env, http), backlog, sample, services)
        failed = report_effects(problems, sample, services) or failed

    await report_raw_limits(stack, start_offsets, end, args.purchases, rates)
    if not services:
        print("no consumer service was reachable: nothing measured but the raw limits")
        failed = True
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.consume_throughput",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--customers", type=int, default=1000, help="customers to spread over")
    parser.add_argument("--purchases", type=int, default=15000, help="purchases in the backlog")
    parser.add_argument("--sample", type=int, default=50, help="customers whose effects to check")
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between /metrics reads")
    parser.add_argument(
        "--deadline", type=float, default=300.0, help="seconds for every consumer to finish"
    )
    args = parser.parse_args(argv)
    if args.customers < 1 or args.purchases < args.customers or args.sample < 0:
        parser.error("--customers >= 1, --purchases >= --customers, --sample >= 0")
    if args.purchases > LEDGER_PAGE * args.customers:
        parser.error(f"at most {LEDGER_PAGE} purchases per customer: one ledger page is checked")
    if args.poll <= 0 or args.deadline <= 0:
        parser.error("--poll and --deadline must be > 0")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
