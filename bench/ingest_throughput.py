"""Ingest throughput: signed `POST /v1/purchases` at a fixed concurrency, against `make up`.

    python -m bench.ingest_throughput [--requests 20000] [--concurrency 64] [--warmup 200]
                                      [--processes 1] [--consumers both|held|running]

Enrols a few fresh customers, sends `--warmup` purchases that are not counted, then
`--requests` purchases with at most `--concurrency` in flight, and reports accepted/s, the
latency of the accepted calls (p50/p95/p99/max) and every answer that was not 202, by status.
The load generator shares the machine with what it measures, so it is lean: every request is
signed and encoded before the clock starts, and sent as raw HTTP/1.1 on `--concurrency`
keep-alive connections (one per request in flight) with uvloop; `--processes` splits the
connections over several processes when one is not enough.
It does so twice (`--consumers both`): first the edge alone, with the consumer services
(points, tiers, notifications) stopped by SIGSTOP while it sends, as if they ran on other
machines (Kafka keeps what ingest publishes; they are continued with SIGCONT whatever
happens), which needs the pid files a `deploy/local/stack.sh` stack writes beside its
dev.env; then with the consumers running beside ingest on the same cores, as `make up` runs
them. After each, it waits (bounded by `--drain-timeout`) until the points and tiers
consumers have finished with every accepted purchase, read from their `/metrics`, and
reports how long that took after the last 202. Then the raw limits of the same run, once
the consumers are done: the same generator and concurrency against ingest's trivial
`GET /healthz` (the HTTP server and the generator alone), and PostgreSQL's raw insert rate
(asyncpg, 1,000-row INSERTs into a TEMP table, `bench.consume_throughput.raw_postgres`);
ingest's rates are printed as shares of each. Exits 1 when any call was not answered 202
(200 for /healthz) or the drain timed out.

Reads URLs and credentials from .fedelta/dev.env through `fedelta_client.DevEnv`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvloop

from bench.consume_throughput import raw_postgres, stack_settings
from bench.metrics import consumed, finished
from bench.processes import CONSUMER_SERVICES, service_pids, stopped
from bench.report import latency_line
from fedelta_client import DevEnv, StackClient
from fedelta_client.signing import SIGNATURE_HEADER, sign
from shared.messaging.topics import PURCHASES

REQUEST_TIMEOUT_S = 30.0
RAW_ROWS = 15_000  # PostgreSQL's raw insert rate, over this many rows
DRAIN_POLL_S = 0.25


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    accepted: int = 0
    wall: float = 0.0
    cpu: float = 0.0

    def merge(self, other: Results) -> None:
        self.latencies += other.latencies
        self.errors += other.errors
        self.accepted += other.accepted
        self.wall = max(self.wall, other.wall)
        self.cpu += other.cpu


def purchase_body(customer_id: str, sequence: int) -> dict[str, Any]:
    return {
        "purchase_id": f"bench-{uuid.uuid4()}",
        "customer_id": customer_id,
        "occurred_at": datetime.now(UTC).isoformat(),
        "currency": "EUR",
        "total": f"{10 + sequence % 90}.{sequence % 100:02d}",
    }


PATH = "/v1/purchases"


def signed_requests(env: DevEnv, customers: list[str], count: int) -> list[bytes]:
    """`count` complete signed HTTP requests, ready to write. Signatures stay valid for five
    minutes, which a run must not exceed."""
    host = urlsplit(env.ingest_url).netloc
    timestamp = int(time.time())
    requests = []
    for sequence in range(count):
        body = json.dumps(purchase_body(customers[sequence % len(customers)], sequence)).encode()
        head = (
            f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {env.partner_key}\r\n"
            f"{SIGNATURE_HEADER}: {sign(env.partner_secret, timestamp, 'POST', PATH, body)}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    return requests


def healthz_requests(env: DevEnv, count: int) -> list[bytes]:
    """`count` plain `GET /healthz`: the server's trivial endpoint, for the raw HTTP limit."""
    host = urlsplit(env.ingest_url).netloc
    return [f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()] * count


async def send_all(
    url: str, requests: list[bytes], connections: int, start_at: float, expect: int = 202
) -> Results:
    """Sends the requests over `connections` keep-alive connections, each one request at a
    time, starting at the wall-clock instant `start_at`; `expect` is the status counted as
    accepted."""
    parts = urlsplit(url)
    results = Results()
    pending = iter(requests)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            for request in pending:
                started = time.perf_counter()
                try:
                    writer.write(request)
                    status, head = await _read_response(reader)
                except (OSError, asyncio.IncompleteReadError) as error:
                    results.errors[type(error).__name__] += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
                    continue
                if status == expect:
                    results.accepted += 1
                    results.latencies.append(time.perf_counter() - started)
                else:
                    results.errors[f"HTTP {status}"] += 1
                if b"connection: close" in head.lower():
                    writer.close()
                    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        finally:
            writer.close()

    await asyncio.sleep(max(0.0, start_at - time.time()))
    cpu_started, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    results.wall = time.perf_counter() - started
    results.cpu = time.process_time() - cpu_started
    return results


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status, head


def _send_share(
    url: str, requests: list[bytes], connections: int, start_at: float, expect: int
) -> Results:
    """One generator process's share (run in a child process when --processes > 1)."""
    return uvloop.run(send_all(url, requests, connections, start_at, expect))


def load(
    url: str, requests: list[bytes], concurrency: int, processes: int, expect: int = 202
) -> Results:
    """The requests sent at `concurrency` over `processes` processes, all starting together."""
    start_at = time.time() + 0.2 * processes
    if processes == 1:
        return uvloop.run(send_all(url, requests, concurrency, start_at, expect))
    shares = [
        (url, requests[i::processes], len(range(i, concurrency, processes)), start_at, expect)
        for i in range(processes)
    ]
    results = Results()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        for share in pool.starmap(_send_share, shares):
            results.merge(share)
    return results


async def finished_purchases(http: httpx.AsyncClient, url: str) -> tuple[int, int]:
    """(all messages of the purchases topic the consumer finished with, dead-lettered ones)."""
    outcomes = await consumed(http, url, PURCHASES)
    return finished(outcomes), outcomes.get("dead_lettered", 0)


async def drain(
    http: httpx.AsyncClient,
    services: dict[str, str],
    baseline: dict[str, int],
    expected: int,
    within_s: float,
) -> dict[str, float | None]:
    """Seconds until each service's consumer has finished `expected` more purchase messages."""
    started = time.perf_counter()
    deadline = started + within_s
    done: dict[str, float | None] = dict.fromkeys(services)
    while time.perf_counter() < deadline and any(v is None for v in done.values()):
        for name, url in services.items():
            if done[name] is None:
                finished, _ = await finished_purchases(http, url)
                if finished - baseline[name] >= expected:
                    done[name] = time.perf_counter() - started
        await asyncio.sleep(DRAIN_POLL_S)
    return done


async def prepare(env: DevEnv, args: argparse.Namespace) -> tuple[list[str], dict[str, int]]:
    """Enrols the customers; returns them and how many purchases each consumer had finished."""
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as http:
        pos = StackClient(env, http)
        customers = [f"bench-{args.run_id}-{i}" for i in range(args.customers)]
        for customer in customers:
            await pos.enrol(customer, email=None, consent=False)
        baseline = {}
        for name, url in consumer_urls(env).items():
            try:
                baseline[name] = (await finished_purchases(http, url))[0]
            except httpx.HTTPError as error:
                print(
                    f"{name} consumer: not reachable ({type(error).__name__}), drain not measured"
                )
    return customers, baseline


def consumer_urls(env: DevEnv) -> dict[str, str]:
    return {"points": env.points_url, "tiers": env.tiers_url}


async def report_drain(
    env: DevEnv,
    baseline: dict[str, int],
    expected: int,
    backlog: int,
    since: float,
    since_label: str,
    within_s: float,
) -> bool:
    """Waits until each consumer has finished `expected` purchases more than its baseline,
    and prints how long after the last answer that was, and the rate over the `backlog` of
    this phase from `since` (a `perf_counter` instant). False when one did not drain."""
    services = {name: url for name, url in consumer_urls(env).items() if name in baseline}
    drained = True
    waited_from = time.perf_counter()
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as http:
        done = await drain(http, services, baseline, expected, within_s)
        for name, seconds in done.items():
            finished, dead = await finished_purchases(http, services[name])
            if seconds is None:
                drained = False
                print(
                    f"{name} consumer: NOT drained within {within_s:g} s "
                    f"({finished - baseline[name]} of {expected} purchases)"
                )
                continue
            rate = backlog / (waited_from - since + seconds)
            dead_note = f"; DEAD-LETTERED {dead}" if dead else ""
            print(
                f"{name} consumer: drained {seconds:6.2f} s after the last 202 "
                f"(~{rate:.0f} purchases/s from {since_label} to drained){dead_note}"
            )
    return drained


@dataclass
class Phase:
    """One measured load: its warmup and measured results, and the time from the first
    warmup send to the last answer."""

    consumers: str  # "held" or "running"
    warm: Results
    measured: Results
    sending_s: float

    @property
    def rate(self) -> float:
        return self.measured.accepted / self.measured.wall

    @property
    def errors(self) -> Counter[str]:
        return self.measured.errors + self.warm.errors


def send_phase(
    env: DevEnv, args: argparse.Namespace, customers: list[str], consumers: str
) -> Phase:
    warmup_requests = signed_requests(env, customers, args.warmup)
    measured_requests = signed_requests(env, customers, args.requests)
    started = time.perf_counter()
    warm = load(env.ingest_url, warmup_requests, args.concurrency, args.processes)
    results = load(env.ingest_url, measured_requests, args.concurrency, args.processes)
    return Phase(consumers, warm, results, time.perf_counter() - started)


def print_phase(args: argparse.Namespace, phase: Phase) -> None:
    results = phase.measured
    held = "held (stopped: the edge alone)" if phase.consumers == "held" else "running beside it"
    print(
        f"ingest POST /v1/purchases, consumers {held}: {args.requests} requests, concurrency "
        f"{args.concurrency}, {args.customers} customers, warmup {args.warmup}, "
        f"{args.processes} generator process(es) (run {args.run_id})"
    )
    print(f"{'accepted/s':<24} {phase.rate:8.1f}   ({results.accepted} in {results.wall:.2f} s)")
    print(latency_line("latency (202)", results.latencies, (50, 95, 99)))
    print(
        f"{'load generator CPU':<24} {results.cpu:8.2f} s over {results.wall:.2f} s wall "
        f"(measured phase): {100 * results.cpu / results.wall:.0f}% of one core"
    )
    if phase.errors:
        print("NOT 202: " + ", ".join(f"{k}: {v}" for k, v in sorted(phase.errors.items())))
    else:
        print("not 202: none")


def held_phase(
    env: DevEnv, args: argparse.Namespace, customers: list[str]
) -> tuple[Phase | None, float]:
    """The edge alone: the consumer services stopped while ingest is loaded (as if they ran on
    other machines; Kafka keeps what ingest publishes), then continued. Returns the phase
    (None when their processes are not known) and when they were continued."""
    pids = service_pids(CONSUMER_SERVICES)
    if pids is None:
        print(
            "consumers: no pid files of a stack.sh stack beside the dev.env, so they cannot be "
            "held; the edge-alone phase is left out"
        )
        return None, time.perf_counter()
    with stopped(pids):
        phase = send_phase(env, args, customers, "held")
    return phase, time.perf_counter()


def run(args: argparse.Namespace) -> int:
    env = DevEnv.load()
    args.run_id = uuid.uuid4().hex[:8]
    customers, baseline = asyncio.run(prepare(env, args))
    phases: list[Phase] = []
    drained = True
    if args.consumers in ("both", "held"):
        phase, continued_at = held_phase(env, args, customers)
        if phase is not None:
            phases.append(phase)
            print_phase(args, phase)
            expected = sum(p.warm.accepted + p.measured.accepted for p in phases)
            backlog = phase.warm.accepted + phase.measured.accepted
            drained &= asyncio.run(
                report_drain(
                    env, baseline, expected, backlog, continued_at, "continued", args.drain_timeout
                )
            )
    if args.consumers in ("both", "running"):
        phase = send_phase(env, args, customers, "running")
        phases.append(phase)
        print_phase(args, phase)
        expected = sum(p.warm.accepted + p.measured.accepted for p in phases)
        backlog = phase.warm.accepted + phase.measured.accepted
        first_send = time.perf_counter() - phase.sending_s
        drained &= asyncio.run(
            report_drain(
                env, baseline, expected, backlog, first_send, "the first send", args.drain_timeout
            )
        )
    if not phases:
        return 1
    raw_errors = report_raw_limits(env, args, {p.consumers: p.rate for p in phases})
    errors = any(p.errors for p in phases)
    return 1 if errors or raw_errors or not drained else 0


def report_raw_limits(env: DevEnv, args: argparse.Namespace, rates: dict[str, float]) -> bool:
    """The raw limits of this run (after the drain): the HTTP server and generator alone on
    `GET /healthz`, and PostgreSQL's raw insert rate. True when a /healthz was not 200."""
    if args.raw_requests == 0:
        return False
    raw = load(
        env.ingest_url,
        healthz_requests(env, args.raw_requests),
        args.concurrency,
        args.processes,
        expect=200,
    )
    http_rate = raw.accepted / raw.wall
    print(
        f"{'raw http (/healthz)':<24} {http_rate:8.1f}/s  ({raw.accepted} at concurrency "
        f"{args.concurrency}, same server and generator; generator "
        f"{100 * raw.cpu / raw.wall:.0f}% of one core)"
    )
    print(latency_line("latency (/healthz)", raw.latencies, (50, 95, 99)))
    postgres_rate = asyncio.run(raw_postgres(stack_settings().points_database_dsn, RAW_ROWS))
    print(
        f"{'raw postgres':<24} {postgres_rate:8.0f} rows/s  (asyncpg, 1,000-row INSERTs into a "
        "TEMP table, bench.consume_throughput.raw_postgres)"
    )
    for consumers, rate in rates.items():
        print(
            f"{'ingest as a share':<24} {rate / http_rate:8.1%} of raw http, "
            f"{rate / postgres_rate:.1%} of raw postgres (consumers {consumers})"
        )
    if raw.errors:
        print("/healthz NOT 200: " + ", ".join(f"{k}: {v}" for k, v in sorted(raw.errors.items())))
    return bool(raw.errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest_throughput",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=20000, help="measured purchases")
    parser.add_argument("--concurrency", type=int, default=64, help="purchases in flight at most")
    parser.add_argument("--warmup", type=int, default=200, help="purchases sent first, not counted")
    parser.add_argument(
        "--processes", type=int, default=1, help="load generator processes sharing the connections"
    )
    parser.add_argument("--customers", type=int, default=8, help="fresh customers to spread over")
    parser.add_argument(
        "--raw-requests",
        type=int,
        default=10000,
        help="GET /healthz for the raw HTTP limit after the run (0: no raw limits)",
    )
    parser.add_argument(
        "--consumers",
        choices=("both", "held", "running"),
        default="both",
        help="load ingest with the consumer services held (stopped), running beside it, or "
        "both, one after the other",
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=300.0, help="seconds to wait for the consumers"
    )
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.customers < 1:
        parser.error("--requests, --concurrency and --customers must be >= 1")
    if args.warmup < 0 or args.raw_requests < 0:
        parser.error("--warmup and --raw-requests must be >= 0")
    if not 1 <= args.processes <= args.concurrency:
        parser.error("--processes must be between 1 and --concurrency")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
