"""Ingest throughput: signed `POST /v1/purchases` at a fixed concurrency, against `make up`.

    python -m bench.ingest_throughput [--requests 2000] [--concurrency 32] [--warmup 100]

Enrols a few fresh customers, sends `--warmup` purchases that are not counted, then
`--requests` purchases with at most `--concurrency` in flight, and reports accepted/s, the
latency of the accepted calls (p50/p95/p99/max) and every answer that was not 202, by status.
Then it waits (bounded by `--drain-timeout`) until the points and tiers consumers have
finished with every accepted purchase, read from their `/metrics`, and reports how long that
took after the last 202. Exits 1 when any call was not answered 202 or the drain timed out.

Reads URLs and credentials from .fedelta/dev.env through `deploy.local.pos.DevEnv`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.metrics import consumed
from bench.report import latency_line
from deploy.local.pos import DevEnv, PosClient
from shared.topics import PURCHASES

REQUEST_TIMEOUT_S = 30.0
DRAIN_POLL_S = 0.25


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    accepted: int = 0


def purchase_body(customer_id: str, sequence: int) -> dict[str, Any]:
    return {
        "purchase_id": f"bench-{uuid.uuid4()}",
        "customer_id": customer_id,
        "occurred_at": datetime.now(UTC).isoformat(),
        "currency": "EUR",
        "total": f"{10 + sequence % 90}.{sequence % 100:02d}",
    }


async def one_purchase(
    pos: PosClient,
    customer_id: str,
    sequence: int,
    limit: asyncio.BoundedSemaphore,
    results: Results,
) -> None:
    async with limit:
        body = purchase_body(customer_id, sequence)
        started = time.perf_counter()
        try:
            response = await pos.post("/v1/purchases", body)
        except httpx.HTTPError as error:
            results.errors[type(error).__name__] += 1
            return
        elapsed = time.perf_counter() - started
    if response.status_code == 202:
        results.accepted += 1
        results.latencies.append(elapsed)
    else:
        results.errors[f"HTTP {response.status_code}"] += 1


async def load(
    pos: PosClient, customers: list[str], count: int, concurrency: int
) -> tuple[Results, float]:
    """`count` purchases spread over `customers`; returns the results and the wall time."""
    results = Results()
    limit = asyncio.BoundedSemaphore(concurrency)
    started = time.perf_counter()
    await asyncio.gather(
        *(one_purchase(pos, customers[i % len(customers)], i, limit, results) for i in range(count))
    )
    return results, time.perf_counter() - started


async def finished_purchases(http: httpx.AsyncClient, url: str) -> tuple[int, int]:
    """(all messages of the purchases topic the consumer finished with, dead-lettered ones)."""
    outcomes = await consumed(http, url, PURCHASES)
    return sum(outcomes.values()), outcomes.get("dead_lettered", 0)


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


async def run(args: argparse.Namespace) -> int:
    env = DevEnv.load()
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, limits=limits) as http:
        pos = PosClient(env, http)
        run_id = uuid.uuid4().hex[:8]
        customers = [f"bench-{run_id}-{i}" for i in range(args.customers)]
        for customer in customers:
            await pos.enrol(customer, email=None, consent=False)
        services = {"points": env.points_url, "tiers": env.tiers_url}
        baseline = {
            name: (await finished_purchases(http, url))[0] for name, url in services.items()
        }

        load_started = time.perf_counter()
        cpu_started = time.process_time()
        warm, _ = await load(pos, customers, args.warmup, args.concurrency)
        results, wall = await load(pos, customers, args.requests, args.concurrency)
        loaded_at = time.perf_counter()
        client_cpu = time.process_time() - cpu_started

        print(
            f"ingest POST /v1/purchases: {args.requests} requests, concurrency {args.concurrency}, "
            f"{args.customers} customers, warmup {args.warmup} (run {run_id})"
        )
        print(
            f"{'accepted/s':<24} {results.accepted / wall:8.1f}   "
            f"({results.accepted} in {wall:.2f} s)"
        )
        print(latency_line("latency (202)", results.latencies, (50, 95, 99)))
        print(
            f"{'load generator CPU':<24} {client_cpu:8.2f} s over {loaded_at - load_started:.2f} s "
            f"wall (warmup included): {100 * client_cpu / (loaded_at - load_started):.0f}% "
            "of one core"
        )
        errors = results.errors + warm.errors
        if errors:
            print("NOT 202: " + ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())))
        else:
            print("not 202: none")

        expected = warm.accepted + results.accepted
        done = await drain(http, services, baseline, expected, args.drain_timeout)
        failed = bool(errors)
        for name, seconds in done.items():
            finished, dead = await finished_purchases(http, services[name])
            if seconds is None:
                failed = True
                print(
                    f"{name} consumer: NOT drained within {args.drain_timeout:g} s "
                    f"({finished - baseline[name]} of {expected} purchases)"
                )
                continue
            # Everything sent (warmup included) over the time from the first send to drained.
            rate = expected / (loaded_at + seconds - load_started)
            dead_note = f"; DEAD-LETTERED {dead}" if dead else ""
            print(
                f"{name} consumer: drained {seconds:6.2f} s after the last 202 "
                f"(~{rate:.0f} purchases/s from first send to drained){dead_note}"
            )
        return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest_throughput",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=2000, help="measured purchases")
    parser.add_argument("--concurrency", type=int, default=32, help="purchases in flight at most")
    parser.add_argument("--warmup", type=int, default=100, help="purchases sent first, not counted")
    parser.add_argument("--customers", type=int, default=8, help="fresh customers to spread over")
    parser.add_argument(
        "--drain-timeout", type=float, default=300.0, help="seconds to wait for the consumers"
    )
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.warmup < 0 or args.customers < 1:
        parser.error("--requests, --concurrency and --customers must be >= 1, --warmup >= 0")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
