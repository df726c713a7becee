"""Consumer throughput: how fast points, tiers, notifications, engagement and insights get
through a purchase backlog.

    python -m bench.consume_throughput [--customers 1000] [--purchases 15000] [--sample 50]
                                       [--history 0] [--alone points,tiers]

Ingest is not involved: the customers are enrolled by writing `CustomerEnrolled` events
straight onto `fedelta.customers.v1` (so ingest does not know them, which this benchmark does
not need), and, once points and tiers have applied every enrolment, `--purchases` valid
`PurchaseCompleted` CloudEvents (key = customer_id) are written straight onto
`fedelta.purchases.v1`, pre-encoded and with every send in flight at once.
`--history N` first gives every customer N earlier purchases (written the same way, in chunks,
and waited for until every consumer has applied them: not timed), so that the timed part
measures the per-purchase cost of members with a long history (issue 24 asks for 1,000).
The clock starts at the first send: from then on the consumers can start on them. Each
service's progress is read from the broker every `--poll` seconds: its consumer group's
committed offsets on the purchases topic (a consumer commits after the transaction that
applied its batch), so the service does no work for the measure; its figure is the time from
the first send until its offsets reach the end of what was written, and purchases/s over that
time. Its counters (`fedelta_events_consumed_total`, on its `/metrics`) are read once it is
done, for the report (what it applied, passed over, dead-lettered). Notifications subscribes
to the purchases topic but acts on none of its types yet: its figure is the rate at which it
passes over them (outcome `ignored`). Engagement works on each purchase under a stamp card (a
stamp a purchase) and a spend challenge made for the run over its admin API, neither
reachable in a run (so no reward adds to the points ledger), and ended after it.
Then, for each service of `--alone` (points and tiers by default; `--alone ''` for none), the
same number of purchases again with the other consumer services stopped (SIGSTOP, from the pid
files of a stack started by deploy/local/stack.sh), as if each consumer had the machine's cores
to itself and its database, as it would on a deployment of more than two cores: that
consumer's rate alone. The others are continued after it and finish those purchases too (not
timed), so every effect below covers them.
Effects are checked over HTTP for `--sample` customers: the bench card holds a stamp per
purchase sent (history included), the points ledger holds exactly one
entry per timed purchase sent to the customer (the newest entries, read page by page back to the
first entry that is not one of them), and the tiers qualifying spend is the sum of their totals
(history included).
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
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.metrics import consumed, finished, wait_quiet
from bench.processes import CONSUMER_SERVICES, cpu_seconds, service_pids, stopped
from fedelta_client import StackClient
from fedelta_client.devenv import REPO, DevEnv, load_values
from shared.messaging import acls, events
from shared.messaging.kafka import KafkaConnection, client_options
from shared.messaging.topics import CUSTOMERS, PARTITIONS, PURCHASES

REQUEST_TIMEOUT_S = 30.0
# Ingest owns the customers and purchases topics: a consumer refuses (dead-letters) an event
# on them from any other source (shared.messaging.provenance), so the benchmark writes as
# ingest does for the demo partner.
SOURCE = "ingest/partner/demo"
PARTNER_ID = "demo"
RAW_BATCH = 1000
LEDGER_PAGE = 199  # the points ledger answers at most 200 entries a page; one is the welcome
HISTORY_CHUNK = 50_000  # history records built and written at a time (memory stays bounded)
HISTORY_LABEL = "h"  # history purchase ids: bench-ct-<run>-h<n>; the timed ones bench-ct-<run>-<n>
# History is spread over the past 300 days: within tiers' rolling year, and a few purchases a
# day, far below points' velocity guard (else the history would be held back for review).
HISTORY_DAYS = 300


@dataclass(frozen=True)
class StackSettings:
    kafka: KafkaConnection  # dev.env's admin principal (PLAINTEXT on a stack without SASL)
    points_database_dsn: str  # plain libpq form, for asyncpg


def stack_settings() -> StackSettings:
    """From the services.env of the stack whose dev.env the benchmarks use."""
    dev_env = Path(os.environ.get("FEDELTA_DEV_ENV", REPO / ".fedelta" / "dev.env"))
    path = dev_env.parent / "services.env"
    if not path.exists():
        raise SystemExit(f"{path} not found: start the stack first with `make up`")
    values = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return StackSettings(
        kafka=admin_connection(values["FEDELTA_POINTS_KAFKA_BOOTSTRAP_SERVERS"]),
        points_database_dsn=values["FEDELTA_POINTS_DATABASE_URL"].replace(
            "postgresql+asyncpg://", "postgresql://", 1
        ),
    )


@dataclass
class Backlog:
    records: list[tuple[bytes, bytes]]  # (key, value)
    totals: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    purchase_ids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, other: Backlog) -> None:
        """The other backlog's purchases counted in this one's expected effects."""
        for customer, total in other.totals.items():
            self.totals[customer] += total
        for customer, ids in other.purchase_ids.items():
            self.purchase_ids[customer] |= ids


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


def purchases(
    customers: list[str],
    count: int,
    run_id: str,
    now: datetime,
    *,
    label: str = "",
    first: int = 0,
    spread_days: int = 0,
) -> Backlog:
    """`count` purchases, numbered from `first`, spread round-robin over the customers (so
    `len(customers) * n` of them give each customer n); ids `bench-ct-<run>-<label><n>`. With
    `spread_days`, a customer's k-th purchase is made 1 + k % spread_days days before `now`."""
    backlog = Backlog(records=[])
    for sequence in range(first, first + count):
        customer = customers[sequence % len(customers)]
        occurred_at = (
            now - timedelta(days=1 + sequence // len(customers) % spread_days)
            if spread_days
            else now
        )
        total = Decimal(f"{10 + sequence % 90}.{sequence % 100:02d}")
        purchase_id = f"bench-ct-{run_id}-{label}{sequence}"
        event = events.new_event(
            events.PurchaseCompleted(
                purchase_id=purchase_id,
                partner_id=PARTNER_ID,
                customer_id=customer,
                occurred_at=occurred_at,
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


def admin_connection(bootstrap_servers: str) -> KafkaConnection:
    """The benchmarks' Kafka login: dev.env's admin principal, at the stack's broker."""
    dev_values = load_values()[1]
    return KafkaConnection.from_env(dev_values | {"KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers})


async def produce(
    bootstrap: str | KafkaConnection, topic: str, records: list[tuple[bytes, bytes]]
) -> tuple[float, dict[TopicPartition, int]]:
    """Writes every record with all sends in flight; returns the seconds until all are acked,
    and the offset after the last record written to each partition."""
    producer = AIOKafkaProducer(
        **client_options(bootstrap),
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
        written = await asyncio.gather(*sent)
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    ends: dict[TopicPartition, int] = {}
    for meta in written:
        partition = TopicPartition(meta.topic, meta.partition)
        ends[partition] = max(ends.get(partition, 0), meta.offset + 1)
    return elapsed, ends


async def end_offsets(bootstrap: str | KafkaConnection, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(**client_options(bootstrap), enable_auto_commit=False)
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


async def follow_offsets(
    kafka: KafkaConnection,
    services: dict[str, str],
    before: dict[TopicPartition, int],
    produced: asyncio.Task[tuple[float, dict[TopicPartition, int]]],
    started: float,
    poll_s: float,
    within_s: float,
) -> dict[str, Progress]:
    """Each service's progress through the backlog from the broker: its consumer group's
    committed offsets (a consumer commits after its batch's transaction), so the services do
    no work for the measure (no /metrics answers while they are timed). A service is done once
    its offsets reach the end of what `produced` wrote to each partition."""
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        progress = {name: Progress() for name in services}
        deadline = started + within_s
        while time.perf_counter() < deadline:
            ends = produced.result()[1] if produced.done() else None
            for name, state in progress.items():
                if state.done_s is None:
                    await _note_offsets(admin, name, state, before, ends, started)
            if all(state.done_s is not None for state in progress.values()):
                break
            await asyncio.sleep(poll_s)
        return progress
    finally:
        await admin.close()


async def _note_offsets(
    admin: AIOKafkaAdminClient,
    name: str,
    state: Progress,
    before: dict[TopicPartition, int],
    ends: dict[TopicPartition, int] | None,
    started: float,
) -> None:
    found = await admin.list_consumer_group_offsets(
        acls.consumer_group(name), partitions=list(before)
    )
    now = time.perf_counter() - started
    committed = {tp: meta.offset for tp, meta in found.items()}
    if state.first_s is None and any(committed.get(tp, -1) > at for tp, at in before.items()):
        state.first_s = now
    if ends is not None and all(committed.get(tp, -1) >= end for tp, end in ends.items()):
        state.done_s = now


async def outcomes_of(
    http: httpx.AsyncClient, services: dict[str, str], progress: dict[str, Progress]
) -> None:
    """Each service's counters of the purchases topic, read once it is done (for the report)."""
    for name, url in services.items():
        progress[name].outcomes = await consumed(http, url, PURCHASES)


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
    pos: StackClient,
    backlog: Backlog,
    sample: list[str],
    services: dict[str, str],
    card_id: str | None = None,
    history: int = 0,
) -> list[str]:
    """What is wrong with the sampled customers' points ledgers, qualifying spends and
    stamp cards."""
    problems: list[str] = []
    for customer in sample:
        if card_id is not None:
            bought = len(backlog.purchase_ids[customer]) + history
            problems += await wrong_stamps(pos, customer, card_id, bought)
        if "points" in services:
            entries, status = await newest_purchase_entries(pos, customer, backlog)
            bought_ids = {purchase_id for purchase_id, _ in entries}
            if status != 200:
                problems.append(f"points ledger of {customer}: HTTP {status}")
            # A purchase has its earning, or its held points, or both when it crossed the
            # day's ceiling (the velocity guard): never two entries of a kind.
            elif bought_ids != backlog.purchase_ids[customer] or len(set(entries)) != len(entries):
                problems.append(
                    f"points ledger of {customer}: {len(entries)} purchase entries, "
                    f"{len(bought_ids)} purchases, {len(backlog.purchase_ids[customer])} sent"
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


async def wrong_stamps(pos: StackClient, customer: str, card_id: str, bought: int) -> list[str]:
    """A stamp per purchase of the run (history included) on the bench card, whose current
    card starts afresh each time one is full (a history of a card's worth fills one)."""
    response = await pos.stamp_cards(customer)
    if response.status_code != 200:
        return [f"stamp cards of {customer}: HTTP {response.status_code}"]
    stamps = next((c["stamps"] for c in response.json()["items"] if c["card_id"] == card_id), 0)
    expected = bought % BENCH_CARD_STAMPS
    return (
        [] if stamps == expected else [f"stamp card of {customer}: {stamps} stamps, {bought} sent"]
    )


async def newest_purchase_entries(
    pos: StackClient, customer: str, backlog: Backlog
) -> tuple[list[tuple[str, str]], int]:
    """The purchase id and kind of the customer's newest ledger entries, page by page, up to
    the first entry that is not one of the timed purchases (a history purchase, the welcome
    bonus); and the HTTP status of the last page read."""
    timed = backlog.purchase_ids[customer]
    found: list[tuple[str, str]] = []
    cursor: str | None = None
    while True:
        params = {"limit": str(LEDGER_PAGE + 1)} | ({"cursor": cursor} if cursor else {})
        response = await pos.read(f"{pos.env.points_url}/v1/customers/{customer}/ledger", params)
        if response.status_code != 200:
            return found, response.status_code
        page = response.json()
        for entry in page["entries"]:
            if entry["purchase_id"] not in timed:
                return found, 200
            found.append((entry["purchase_id"], entry["kind"]))
        cursor = page["next_cursor"]
        if cursor is None:
            return found, 200


async def finished_on(
    http: httpx.AsyncClient, services: dict[str, str], topic: str
) -> dict[str, int]:
    """How many records of `topic` each service has finished with so far (its counters)."""
    return {name: finished(await consumed(http, url, topic)) for name, url in services.items()}


@dataclass(frozen=True)
class BenchRun:
    """What the phases of one run share: the HTTP client, the stack, the consumers reached,
    the run's customers, its arguments, its id (in every purchase id) and when it started."""

    http: httpx.AsyncClient
    stack: StackSettings
    services: dict[str, str]
    customers: list[str]
    args: argparse.Namespace
    run_id: str
    now: datetime


async def apply_history(
    bench: BenchRun,
) -> dict[str, Decimal]:
    """Writes `--history` purchases per customer and waits until every consumer has finished
    with them (not timed); returns each customer's total spent in them."""
    count = bench.args.history * len(bench.customers)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    baseline = await finished_on(bench.http, bench.services, PURCHASES)
    started = time.perf_counter()
    for first in range(0, count, HISTORY_CHUNK):
        chunk = purchases(
            bench.customers,
            min(HISTORY_CHUNK, count - first),
            bench.run_id,
            bench.now,
            label=HISTORY_LABEL,
            first=first,
            spread_days=HISTORY_DAYS,
        )
        await produce(bench.stack.kafka, PURCHASES, chunk.records)
        for customer, total in chunk.totals.items():
            totals[customer] += total
    # At least the timed deadline, and time for 500 purchases/s: a long history is slow.
    within_s = max(bench.args.deadline, count / 500)
    progress = await follow(
        bench.http, bench.services, baseline, count, started, bench.args.poll, within_s
    )
    late = [name for name, state in progress.items() if state.done_s is None]
    if late:
        raise SystemExit(f"history: {', '.join(late)} did not apply {count} purchases in time")
    print(
        f"{'history':<24} {bench.args.history} purchases per customer ({count}) applied by every "
        f"consumer in {max(s.done_s or 0.0 for s in progress.values()):.1f} s (not timed)"
    )
    return totals


async def raw_kafka(
    bootstrap: str | KafkaConnection,
    start: dict[TopicPartition, int],
    end: dict[TopicPartition, int],
) -> float:
    """Messages/s for a fresh consumer group reading [start, end) and parsing every value."""
    consumer = AIOKafkaConsumer(
        **client_options(bootstrap),
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
        "engagement": env.engagement_url,
        "insights": env.insights_url,
    }


# Engagement's work per purchase with a program manager's rules in force: a stamp per
# purchase and a spend challenge, neither reachable by the timed purchases (no reward among
# their entries in the points ledger; a history of 1,000, issue 24's, fills a card before
# them); ended once the run is over.
BENCH_CARD_STAMPS = 1000
BENCH_CARD = {"name": "bench card", "stamps_required": BENCH_CARD_STAMPS, "reward": {"points": 1}}
BENCH_CHALLENGE = {
    "name": "bench challenge",
    "goal": {"kind": "spend", "target": "100000"},
    "reward": {"points": 1},
}


async def engagement_rules(pos: StackClient, now: datetime) -> dict[str, str]:
    """The rules engagement applies to every purchase of the run: kind -> id."""
    window = {"starts_at": (now - timedelta(days=HISTORY_DAYS + 2)).isoformat()}
    made = {}
    for kind, body in (("stamp-cards", BENCH_CARD), ("challenges", BENCH_CHALLENGE)):
        extra = {"ends_at": (now + timedelta(days=1)).isoformat()} if kind == "challenges" else {}
        response = await pos.admin_post(
            f"{pos.env.engagement_url}/v1/{kind}",
            {**body, **window, **extra},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        if response.status_code != 201:
            raise SystemExit(f"engagement {kind}: HTTP {response.status_code} {response.text}")
        made[kind] = response.json()["id"]
    return made


async def end_engagement_rules(http: httpx.AsyncClient, env: DevEnv, rules: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {env.token('engagement', 'admin')}"}
    for kind, rule_id in rules.items():
        await http.delete(f"{env.engagement_url}/v1/{kind}/{rule_id}", headers=headers)


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
    checked = [n for n in ("points", "tiers", "engagement") if n in services]
    if problems:
        print(f"EFFECTS WRONG for {len(problems)} of {len(sample)} sampled customers:")
        for problem in problems[:20]:
            print(f"  {problem}")
        return True
    if checked:
        print(
            f"{'effects':<14} {len(sample)} sampled customers: "
            + " and ".join(
                {
                    "points": "one earning (or held, or both) per purchase",
                    "tiers": "spend = Σ totals",
                    "engagement": "a stamp per purchase",
                }[n]
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
    kafka_rate = await raw_kafka(stack.kafka, start_offsets, end)
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


@dataclass(frozen=True)
class AloneRun:
    """One consumer's phase alone: what it was sent and how it went."""

    name: str
    backlog: Backlog
    progress: Progress
    cpu_s: float  # the service's processes' CPU time over the phase


async def measure_alone(
    bench: BenchRun,
) -> list[AloneRun]:
    """Each `--alone` consumer on a backlog of its own with the other consumers stopped; the
    others then finish it too, so that the effects checked after cover it."""
    runs: list[AloneRun] = []
    for name in bench.args.alone:
        others = {n: u for n, u in bench.services.items() if n != name}
        pids = service_pids(tuple(n for n in CONSUMER_SERVICES if n != name))
        if name not in bench.services or pids is None:
            print(f"{name}: not measured alone (not reachable, or not started by stack.sh)")
            continue
        await wait_quiet(bench.http, bench.services, (PURCHASES,), quiet_s=1.0)
        backlog = purchases(
            bench.customers, bench.args.purchases, bench.run_id, bench.now, label=f"{name}-"
        )
        baseline = await finished_on(bench.http, bench.services, PURCHASES)
        before = await end_offsets(bench.stack.kafka, PURCHASES)
        own = service_pids((name,)) or []
        cpu_before = cpu_seconds(own)
        with stopped(pids):
            started = time.perf_counter()
            produced = asyncio.create_task(produce(bench.stack.kafka, PURCHASES, backlog.records))
            progress = await follow_offsets(
                bench.stack.kafka,
                {name: bench.services[name]},
                before,
                produced,
                started,
                bench.args.poll,
                bench.args.deadline,
            )
            await produced
            cpu_s = cpu_seconds(own) - cpu_before
        await outcomes_of(bench.http, {name: bench.services[name]}, progress)
        runs.append(AloneRun(name, backlog, progress[name], cpu_s))
        await follow(
            bench.http,
            others,
            baseline,
            bench.args.purchases,
            time.perf_counter(),
            bench.args.poll,
            bench.args.deadline,
        )
    return runs


def report_alone(
    runs: list[AloneRun], purchases: int, deadline: float
) -> tuple[dict[str, float], bool]:
    """Prints each consumer's figure alone; its purchases/s (named `<service> alone`), and
    whether one failed."""
    print("alone: each consumer with the other consumer services stopped (SIGSTOP)")
    rates, failed = report_consumers({r.name: r.progress for r in runs}, purchases, deadline)
    for phase in runs:
        print(
            f"{phase.name:<14} its own CPU: {phase.cpu_s / purchases * 1e6:.0f} µs a purchase "
            "(its processes' user and system time over the phase)"
        )
    return {f"{name} alone": rate for name, rate in rates.items()}, failed


async def run(args: argparse.Namespace) -> int:
    env = DevEnv.load()
    stack = stack_settings()
    run_id = uuid.uuid4().hex[:8]
    customers = [f"bench-ct-{run_id}-{i}" for i in range(args.customers)]
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as http:
        services = await reachable(http, consumer_urls(env))
        if services:
            await wait_quiet(http, services, (CUSTOMERS, PURCHASES))
        customer_base = await finished_on(http, services, CUSTOMERS)
        now = datetime.now(UTC)
        pos = StackClient(env, http)
        rules = await engagement_rules(pos, now) if "engagement" in services else {}
        await produce(stack.kafka, CUSTOMERS, enrolments(customers, now))
        await wait_enrolled(http, services, customer_base, len(customers))

        bench = BenchRun(http, stack, services, customers, args, run_id, now)
        history = await apply_history(bench) if args.history else {}
        backlog = purchases(customers, args.purchases, run_id, now)
        for customer, total in history.items():
            backlog.totals[customer] += total
        await wait_quiet(http, services, (CUSTOMERS,), quiet_s=1.0)
        start_offsets = await end_offsets(stack.kafka, PURCHASES)

        started = time.perf_counter()
        produced = asyncio.create_task(produce(stack.kafka, PURCHASES, backlog.records))
        progress = await follow_offsets(
            stack.kafka, services, start_offsets, produced, started, args.poll, args.deadline
        )
        produce_s, _ = await produced
        await outcomes_of(http, services, progress)
        end = await end_offsets(stack.kafka, PURCHASES)

        print(
            f"consume throughput: {args.purchases} purchases of {args.customers} customers "
            f"written straight onto {PURCHASES} (customers enrolled straight onto {CUSTOMERS}; "
            f"run {run_id})"
        )
        print(
            f"{'written and acked in':<24} {produce_s:8.2f} s ({args.purchases / produce_s:.0f}/s)"
        )
        rates, failed = report_consumers(progress, args.purchases, args.deadline)
        alone = await measure_alone(bench)
        for phase in alone:
            backlog.add(phase.backlog)
        alone_rates, alone_failed = report_alone(alone, args.purchases, args.deadline)
        rates |= alone_rates
        failed = failed or alone_failed

        sample = random.Random(run_id).sample(customers, min(args.sample, len(customers)))
        card_id = rules.get("stamp-cards")
        problems = await verify(pos, backlog, sample, services, card_id, args.history)
        failed = report_effects(problems, sample, services) or failed
        await end_engagement_rules(http, env, rules)

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
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="earlier purchases per customer, applied before the timed part",
    )
    parser.add_argument(
        "--alone",
        type=lambda text: tuple(n for n in text.split(",") if n),
        default=("points", "tiers"),
        help="consumers measured again each with the other consumers stopped ('' for none)",
    )
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between /metrics reads")
    parser.add_argument(
        "--deadline", type=float, default=300.0, help="seconds for every consumer to finish"
    )
    args = parser.parse_args(argv)
    if args.customers < 1 or args.purchases < args.customers or args.sample < 0:
        parser.error("--customers >= 1, --purchases >= --customers, --sample >= 0")
    if args.history < 0:
        parser.error("--history must be >= 0")
    if any(name not in CONSUMER_SERVICES for name in args.alone):
        parser.error(f"--alone names consumers of {', '.join(CONSUMER_SERVICES)}")
    if args.purchases * (1 + len(args.alone)) > LEDGER_PAGE * args.customers:
        parser.error(f"at most {LEDGER_PAGE} purchases per customer: one ledger page is checked")
    if args.poll <= 0 or args.deadline <= 0:
        parser.error("--poll and --deadline must be > 0")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
