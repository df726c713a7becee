"""Pipeline latency: from ingest's 202 to the purchase's points, under an open-loop load.

    python -m bench.pipeline_latency [--rate 500] [--seconds 20] [--customers 500]
    python -m bench.pipeline_latency --mode sequential [--customers 50] [--interval 0.02]

open (default): enrols `--customers` fresh customers through ingest and waits until points
and tiers know each of them, so that enrolment is not part of the figure. Then it sends signed
`POST /v1/purchases` at a fixed `--rate` for `--seconds`: the i-th purchase is due at
start + i / rate and is sent then whatever the earlier ones' answers (open loop: a slow answer
does not delay the next send, so there is no coordinated omission), on a pool of keep-alive
connections that grows when every connection is busy (at most `--connections`; a send that
waits for one is late, and its send->202 time counts from when it was due).
A side consumer of `fedelta.points.v1` timestamps the `PointsEarned` of each purchase (it
carries the purchase_id). Points publishes it through its outbox relay after the transaction
that wrote the ledger entry committed, so that time is an upper bound on "balance visible"
(by the relay's delay); polling every purchase over HTTP at this rate would itself load the
machine. A `--sample` of purchases is then checked over HTTP in the points ledger.
Reports send->202 and 202->earned published (p50/p95/p99/max). A purchase that is not
answered 202, or whose earning is not seen within `--deadline` seconds after the last send,
is a failure (exit status 1), never dropped.

sequential: the earlier benchmark, one purchase per customer, one at a time
(`--concurrency`), polling points' ledger and tiers' qualifying spend every `--interval`
until each shows it; figures are upper bounds by one interval plus one poll.

Reads URLs and credentials from .fedelta/dev.env (or FEDELTA_DEV_ENV) through
`fedelta_client.DevEnv`, and the Kafka bootstrap servers from the services.env beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.consume_throughput import LEDGER_PAGE
from bench.metrics import wait_quiet
from bench.report import latency_line
from fedelta_client import DevEnv, StackClient
from fedelta_client.devenv import kafka_bootstrap_servers, load_values
from fedelta_client.signing import SIGNATURE_HEADER, sign
from shared.messaging import events
from shared.messaging.kafka import KafkaConnection, client_options
from shared.messaging.topics import CUSTOMERS, PARTITIONS, POINTS, PURCHASES

REQUEST_TIMEOUT_S = 10.0
ENROL_DEADLINE_S = 120.0
ENROL_CONCURRENCY = 16
PATH = "/v1/purchases"
QUANTILES = (50, 95, 99)
IDLE_LIMIT_S = 2.0


# --- open loop -------------------------------------------------------------------------------


@dataclass
class Purchase:
    purchase_id: str
    customer_id: str
    request: bytes
    due: float = 0.0  # perf_counter when it was due to be sent
    accepted: float | None = None  # perf_counter of its 202
    earned: float | None = None  # perf_counter when its PointsEarned was seen
    error: str | None = None


def signed_purchases(env: DevEnv, customers: list[str], count: int, run_id: str) -> list[Purchase]:
    """Every request signed and encoded before the clock starts (signatures last 5 minutes)."""
    host = urlsplit(env.ingest_url).netloc
    timestamp = int(time.time())
    prepared = []
    for sequence in range(count):
        customer = customers[sequence % len(customers)]
        purchase_id = f"bench-lat-{run_id}-{sequence}"
        body = json.dumps(
            {
                "purchase_id": purchase_id,
                "customer_id": customer,
                "occurred_at": datetime.now(UTC).isoformat(),
                "currency": "EUR",
                "total": f"{10 + sequence % 90}.{sequence % 100:02d}",
            }
        ).encode()
        head = (
            f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {env.partner_key}\r\n"
            f"{SIGNATURE_HEADER}: {sign(env.partner_secret, timestamp, 'POST', PATH, body)}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        prepared.append(Purchase(purchase_id, customer, head.encode() + body))
    return prepared


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass
class ConnectionPool:
    """Keep-alive connections, the most recently used first. One idle for `IDLE_LIMIT_S` is
    closed rather than reused, since uvicorn closes idle connections after 5 s."""

    host: str
    port: int
    limit: int
    idle: list[tuple[Connection, float]] = field(default_factory=list)
    opened: int = 0
    peak: int = 0
    resent: int = 0
    _freed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def take(self, *, fresh: bool = False) -> tuple[Connection, bool]:
        """A connection, and whether it was used before."""
        async with self._freed:
            stale = time.perf_counter() - IDLE_LIMIT_S
            while self.idle and self.idle[0][1] < stale:
                self.idle.pop(0)[0][1].close()
                self.opened -= 1
            while not fresh and not self.idle and self.opened >= self.limit:
                await self._freed.wait()
            if self.idle and not fresh:
                return self.idle.pop()[0], True
            self.opened += 1
            self.peak = max(self.peak, self.opened)
        try:
            return await asyncio.open_connection(self.host, self.port), False
        except OSError:
            await self.discard(None)
            raise

    async def give_back(self, connection: Connection) -> None:
        async with self._freed:
            self.idle.append((connection, time.perf_counter()))
            self._freed.notify()

    async def discard(self, connection: Connection | None) -> None:
        if connection is not None:
            connection[1].close()
        async with self._freed:
            self.opened -= 1
            self._freed.notify()

    def close(self) -> None:
        for (_, writer), _ in self.idle:
            writer.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(head[9:12]), head


async def send_one(pool: ConnectionPool, purchase: Purchase) -> None:
    fresh = False
    while True:
        connection: Connection | None = None
        reused = False
        try:
            connection, reused = await pool.take(fresh=fresh)
            reader, writer = connection
            writer.write(purchase.request)
            status, head = await asyncio.wait_for(_read_response(reader), REQUEST_TIMEOUT_S)
        except asyncio.IncompleteReadError as error:
            await pool.discard(connection)
            if reused and not error.partial and not fresh:
                # The server had closed the kept-alive connection before reading the request:
                # nothing was processed, so it is sent again once, on a new connection.
                pool.resent += 1
                fresh = True
                continue
            purchase.error = type(error).__name__
            return
        except (OSError, TimeoutError) as error:
            purchase.error = type(error).__name__
            await pool.discard(connection)
            return
        break
    if status == 202:
        purchase.accepted = time.perf_counter()
    else:
        purchase.error = f"HTTP {status}"
    if b"connection: close" in head.lower():
        await pool.discard(connection)
    else:
        await pool.give_back(connection)


async def open_loop(
    url: str, purchases: list[Purchase], rate: float, connections: int
) -> tuple[float, ConnectionPool]:
    """Sends purchase i at start + i / rate; returns the largest lateness of a send, and the
    pool (how many connections at most, how many requests were sent again)."""
    parts = urlsplit(url)
    pool = ConnectionPool(parts.hostname or "127.0.0.1", parts.port or 80, connections)
    tasks = []
    started = time.perf_counter()
    worst_late = 0.0
    try:
        for index, purchase in enumerate(purchases):
            purchase.due = started + index / rate
            delay = purchase.due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            worst_late = max(worst_late, time.perf_counter() - purchase.due)
            tasks.append(asyncio.create_task(send_one(pool, purchase)))
        await asyncio.gather(*tasks)
    finally:
        pool.close()
    return worst_late, pool


class EarningWatcher:
    """A side consumer of the points topic, from its end at start, that timestamps the
    PointsEarned of the purchases being watched."""

    def __init__(self, bootstrap: str | KafkaConnection, purchases: list[Purchase]) -> None:
        self.by_id = {p.purchase_id: p for p in purchases}
        self.consumer = AIOKafkaConsumer(
            **client_options(bootstrap), enable_auto_commit=False, max_poll_records=1000
        )
        self.seen = 0
        self._target = len(purchases)
        self._reached = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        partitions = [TopicPartition(POINTS, p) for p in range(PARTITIONS)]
        self.consumer.assign(partitions)
        for partition, offset in (await self.consumer.end_offsets(partitions)).items():
            self.consumer.seek(partition, offset)
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while not self._stopping.is_set():
            polled = await self.consumer.getmany(timeout_ms=100, max_records=1000)
            now = time.perf_counter()
            for messages in polled.values():
                for message in messages:
                    if message.value is None:
                        continue
                    event = json.loads(message.value)
                    if event.get("type") != events.POINTS_EARNED:
                        continue
                    purchase = self.by_id.get(event["data"].get("purchase_id"))
                    if purchase is not None and purchase.earned is None:
                        purchase.earned = now
                        self.seen += 1
                        if self.seen >= self._target:
                            self._reached.set()

    async def wait_for(self, count: int, within_s: float) -> None:
        """Until `count` earnings have been seen, or `within_s` has passed."""
        self._target = count
        if self.seen < count:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reached.wait(), within_s)

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
        await self.consumer.stop()


async def enrol_all(pos: StackClient, customers: list[str], interval: float) -> None:
    """Enrols through ingest, then waits until points and tiers know every customer."""
    limit = asyncio.Semaphore(ENROL_CONCURRENCY)
    deadline = time.perf_counter() + ENROL_DEADLINE_S

    async def enrol(customer: str) -> None:
        async with limit:
            await pos.enrol(customer, email=None, consent=False)

    async def known(customer: str) -> None:
        async with limit:
            await wait_known(pos, customer, deadline, interval)

    await asyncio.gather(*(enrol(c) for c in customers))
    await asyncio.gather(*(known(c) for c in customers))


async def verify_sample(pos: StackClient, sample: list[Purchase]) -> list[str]:
    """The sampled purchases that the points ledger does not show over HTTP."""
    missing = []
    for purchase in sample:
        customer_url = f"{pos.env.points_url}/v1/customers/{purchase.customer_id}"
        response = await pos.read(f"{customer_url}/ledger?limit={LEDGER_PAGE + 1}")
        ids = (
            {entry["purchase_id"] for entry in response.json()["entries"]}
            if response.status_code == 200
            else set()
        )
        if purchase.purchase_id not in ids:
            missing.append(f"{purchase.purchase_id} of {purchase.customer_id}")
    return missing


async def run_open(args: argparse.Namespace, env: DevEnv) -> int:
    run_id = uuid.uuid4().hex[:8]
    customers = [f"bench-lat-{run_id}-{i}" for i in range(args.customers)]
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as http:
        pos = StackClient(env, http)
        await enrol_all(pos, customers, args.interval)
        await wait_quiet(
            http,
            {"points": env.points_url, "tiers": env.tiers_url},
            (CUSTOMERS, PURCHASES),
            quiet_s=1.0,
        )
        count = int(args.rate * args.seconds)
        purchases = signed_purchases(env, customers, count, run_id)
        # As dev.env's admin principal (a stack from before SASL: PLAINTEXT, at the same place).
        kafka = KafkaConnection.from_env(
            load_values()[1] | {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers()}
        )
        watcher = EarningWatcher(kafka, purchases)
        await watcher.start()
        try:
            sending_started = time.perf_counter()
            worst_late, pool = await open_loop(
                env.ingest_url, purchases, args.rate, args.connections
            )
            sent_s = time.perf_counter() - sending_started
            accepted = [p for p in purchases if p.accepted is not None]
            await watcher.wait_for(len(accepted), args.deadline)
        finally:
            await watcher.stop()
        sample = random.Random(run_id).sample(accepted, min(args.sample, len(accepted)))
        not_in_ledger = await verify_sample(pos, sample)

    earned = [p for p in accepted if p.earned is not None]
    print(
        f"pipeline latency, open loop: {count} purchases at {args.rate:g}/s for "
        f"{args.seconds:g} s over {args.customers} customers (run {run_id}); all sent in "
        f"{sent_s:.2f} s, latest send {worst_late * 1000:.1f} ms after due, "
        f"{pool.peak} connections at most, {pool.resent} sent again on a new connection "
        "(the server had closed the idle one)"
    )
    to_202 = [(p.due, p.accepted) for p in purchases if p.accepted is not None]
    from_202 = [(p.accepted, p.earned) for p in purchases if p.accepted and p.earned]
    to_earned = [(p.due, p.earned) for p in purchases if p.earned is not None]
    print(latency_line("send->202 (from due)", [b - a for a, b in to_202], QUANTILES))
    print(latency_line("202->earned published", [b - a for a, b in from_202], QUANTILES))
    print(latency_line("send->earned published", [b - a for a, b in to_earned], QUANTILES))
    failed = False
    errors: dict[str, int] = {}
    for p in purchases:
        if p.error is not None:
            errors[p.error] = errors.get(p.error, 0) + 1
    if errors:
        failed = True
        print("NOT 202: " + ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())))
    else:
        print("not 202: none")
    if len(earned) < len(accepted):
        failed = True
        print(
            f"NO EARNING SEEN within {args.deadline:g} s after the last send for "
            f"{len(accepted) - len(earned)} of {len(accepted)} accepted purchases"
        )
    if not_in_ledger:
        failed = True
        print(f"NOT IN THE POINTS LEDGER over HTTP: {len(not_in_ledger)} of {len(sample)} sampled")
        for line in not_in_ledger[:10]:
            print(f"  {line}")
    else:
        print(f"points ledger over HTTP: {len(sample)} sampled purchases all there")
    return 1 if failed else 0


# --- sequential ------------------------------------------------------------------------------


@dataclass
class Sample:
    customer_id: str
    accepted_s: float  # the purchase's 202, since its request was sent
    points_s: float | None  # 202 -> visible in points; None when the deadline passed
    tiers_s: float | None  # 202 -> visible in tiers


async def qualifying_spend(pos: StackClient, customer_id: str) -> Decimal | None:
    response = await pos.tier(customer_id)
    if response.status_code != 200:
        return None
    return Decimal(response.json()["qualifying_spend"])


async def ledger_has(pos: StackClient, customer_id: str, purchase_id: str) -> bool:
    response = await pos.read(f"{pos.env.points_url}/v1/customers/{customer_id}/ledger?limit=20")
    if response.status_code != 200:
        return False
    return any(entry["purchase_id"] == purchase_id for entry in response.json()["entries"])


async def wait_known(pos: StackClient, customer_id: str, deadline: float, interval: float) -> None:
    """Until points and tiers both answer 200 for the customer; SystemExit past the deadline."""
    while time.perf_counter() < deadline:
        balance, tier = await asyncio.gather(pos.balance(customer_id), pos.tier(customer_id))
        if balance.status_code == 200 and tier.status_code == 200:
            return
        await asyncio.sleep(interval)
    raise SystemExit(f"points and tiers did not learn of {customer_id} within the deadline")


async def purchase_once(pos: StackClient, customer_id: str, total: str, purchase_id: str) -> None:
    """One signed attempt without an Idempotency-Key (the purchase id keys it), as the figures
    in bench/README.md were measured; SystemExit unless 202."""
    body = {
        "purchase_id": purchase_id,
        "customer_id": customer_id,
        "occurred_at": datetime.now(UTC).isoformat(),
        "currency": "EUR",
        "total": total,
    }
    response = await pos.post(PATH, body)
    if response.status_code != 202:
        raise SystemExit(f"ingest answered {response.status_code}: {response.text}")


async def measure(
    pos: StackClient, customer_id: str, total: str, interval: float, deadline_s: float
) -> Sample:
    before = await qualifying_spend(pos, customer_id)
    if before is None:
        raise SystemExit(f"tiers does not know {customer_id}")
    purchase_id = f"bench-{uuid.uuid4()}"
    sent = time.perf_counter()
    await purchase_once(pos, customer_id, total, purchase_id)
    accepted = time.perf_counter()
    deadline = accepted + deadline_s
    target = before + Decimal(total)
    points_s: float | None = None
    tiers_s: float | None = None

    async def points_visible() -> bool:
        return points_s is not None or await ledger_has(pos, customer_id, purchase_id)

    async def tiers_visible() -> bool:
        if tiers_s is not None:
            return True
        spend = await qualifying_spend(pos, customer_id)
        return spend is not None and spend >= target

    while (points_s is None or tiers_s is None) and time.perf_counter() < deadline:
        in_points, in_tiers = await asyncio.gather(points_visible(), tiers_visible())
        seen = time.perf_counter() - accepted
        if points_s is None and in_points:
            points_s = seen
        if tiers_s is None and in_tiers:
            tiers_s = seen
        if points_s is None or tiers_s is None:
            await asyncio.sleep(interval)
    return Sample(customer_id, accepted - sent, points_s, tiers_s)


async def run_sequential(args: argparse.Namespace, env: DevEnv) -> int:
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as http:
        pos = StackClient(env, http)
        run_id = uuid.uuid4().hex[:8]
        customers = [f"bench-lat-{run_id}-{i}" for i in range(args.customers)]
        await enrol_all(pos, customers, args.interval)

        limit = asyncio.BoundedSemaphore(args.concurrency)

        async def one(index: int, customer: str) -> Sample:
            async with limit:
                total = f"{20 + index % 50}.{index % 100:02d}"
                return await measure(pos, customer, total, args.interval, args.deadline)

        samples = await asyncio.gather(*(one(i, c) for i, c in enumerate(customers)))

    points = [s.points_s for s in samples if s.points_s is not None]
    tiers = [s.tiers_s for s in samples if s.tiers_s is not None]
    print(
        f"pipeline latency, sequential, 202 -> visible: {args.customers} customers, concurrency "
        f"{args.concurrency}, poll every {args.interval * 1000:g} ms, deadline {args.deadline:g} s "
        f"(run {run_id})"
    )
    print(latency_line("ingest 202 (send->202)", [s.accepted_s for s in samples], (50, 95)))
    print(latency_line("points (202->ledger)", points, (50, 95)))
    print(latency_line("tiers (202->spend)", tiers, (50, 95)))
    missed = [s for s in samples if s.points_s is None or s.tiers_s is None]
    if not missed:
        print("missed deadline: none")
        return 0
    print(f"MISSED DEADLINE: {len(missed)} of {len(samples)} samples")
    for s in missed:
        where = [n for n, v in (("points", s.points_s), ("tiers", s.tiers_s)) if v is None]
        print(f"  {s.customer_id}: not visible in {' and '.join(where)}")
    return 1


async def run(args: argparse.Namespace) -> int:
    env = DevEnv.load()
    if args.mode == "sequential":
        return await run_sequential(args, env)
    return await run_open(args, env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline_latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--mode", choices=("open", "sequential"), default="open")
    parser.add_argument("--rate", type=float, default=500.0, help="open: purchases per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="open: seconds of sending")
    parser.add_argument(
        "--connections", type=int, default=256, help="open: keep-alive connections at most"
    )
    parser.add_argument(
        "--sample", type=int, default=50, help="open: purchases checked in the ledger over HTTP"
    )
    parser.add_argument("--customers", type=int, default=None, help="500 open, 50 sequential")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="sequential: samples in flight at most"
    )
    parser.add_argument("--interval", type=float, default=0.02, help="poll interval, seconds")
    parser.add_argument(
        "--deadline",
        type=float,
        default=30.0,
        help="seconds: per sample (sequential), after the last send (open)",
    )
    args = parser.parse_args(argv)
    if args.customers is None:
        args.customers = 500 if args.mode == "open" else 50
    if args.customers < 1 or args.concurrency < 1 or args.interval <= 0 or args.deadline <= 0:
        parser.error("--customers and --concurrency must be >= 1, --interval and --deadline > 0")
    if args.rate <= 0 or args.seconds <= 0 or args.connections < 1 or args.sample < 0:
        parser.error("--rate, --seconds, --connections must be > 0, --sample >= 0")
    if args.mode == "open" and args.rate * args.seconds > LEDGER_PAGE * args.customers:
        parser.error(f"at most {LEDGER_PAGE} purchases per customer: one ledger page is checked")
    if args.seconds > 240:
        parser.error("--seconds at most 240: the pre-made signatures last five minutes")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
