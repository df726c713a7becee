"""Pipeline latency: from ingest's 202 to the purchase being visible in points and in tiers.

    python -m bench.pipeline_latency [--customers 50] [--concurrency 1] [--interval 0.02]

Enrols `--customers` fresh customers and waits until points and tiers know each of them
(their welcome bonus and bronze tier), so that only the purchase path is measured. Then, per
customer (`--concurrency` at a time, 1 = one after the other), it reports one signed purchase,
takes the time its 202 arrives, and polls every `--interval` seconds until
  points: the customer's ledger holds an entry for that purchase_id, and
  tiers:  the customer's qualifying spend has grown by the purchase's total.
Each is timestamped when the poll that first sees it answers, so a figure is an upper bound
by up to one interval plus one poll. A sample not visible within `--deadline` seconds is
reported as a failure (and the exit status is 1), never dropped.

Reads URLs and credentials from .fedelta/dev.env through `deploy.local.pos.DevEnv`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

import httpx

from bench.report import latency_line
from deploy.local.pos import DevEnv, PosClient

REQUEST_TIMEOUT_S = 10.0
ENROL_DEADLINE_S = 60.0


@dataclass
class Sample:
    customer_id: str
    accepted_s: float  # the purchase's 202, since its request was sent
    points_s: float | None  # 202 -> visible in points; None when the deadline passed
    tiers_s: float | None  # 202 -> visible in tiers


async def qualifying_spend(pos: PosClient, customer_id: str) -> Decimal | None:
    response = await pos.tier(customer_id)
    if response.status_code != 200:
        return None
    return Decimal(response.json()["qualifying_spend"])


async def ledger_has(pos: PosClient, customer_id: str, purchase_id: str) -> bool:
    response = await pos.read(f"{pos.env.points_url}/v1/customers/{customer_id}/ledger?limit=20")
    if response.status_code != 200:
        return False
    return any(entry["purchase_id"] == purchase_id for entry in response.json()["entries"])


async def wait_known(pos: PosClient, customer_id: str, deadline: float, interval: float) -> None:
    """Until points and tiers both answer 200 for the customer; SystemExit past the deadline."""
    while time.perf_counter() < deadline:
        balance, tier = await asyncio.gather(pos.balance(customer_id), pos.tier(customer_id))
        if balance.status_code == 200 and tier.status_code == 200:
            return
        await asyncio.sleep(interval)
    raise SystemExit(f"points and tiers did not learn of {customer_id} within the deadline")


async def measure(
    pos: PosClient, customer_id: str, total: str, interval: float, deadline_s: float
) -> Sample:
    before = await qualifying_spend(pos, customer_id)
    if before is None:
        raise SystemExit(f"tiers does not know {customer_id}")
    purchase_id = f"bench-{uuid.uuid4()}"
    sent = time.perf_counter()
    await pos.purchase(customer_id, total, purchase_id)  # SystemExit unless 202
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


async def run(args: argparse.Namespace) -> int:
    env = DevEnv.load()
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as http:
        pos = PosClient(env, http)
        run_id = uuid.uuid4().hex[:8]
        customers = [f"bench-lat-{run_id}-{i}" for i in range(args.customers)]
        for customer in customers:
            await pos.enrol(customer, email=None, consent=False)
        enrol_deadline = time.perf_counter() + ENROL_DEADLINE_S
        for customer in customers:
            await wait_known(pos, customer, enrol_deadline, args.interval)

        limit = asyncio.BoundedSemaphore(args.concurrency)

        async def one(index: int, customer: str) -> Sample:
            async with limit:
                total = f"{20 + index % 50}.{index % 100:02d}"
                return await measure(pos, customer, total, args.interval, args.deadline)

        samples = await asyncio.gather(*(one(i, c) for i, c in enumerate(customers)))

    points = [s.points_s for s in samples if s.points_s is not None]
    tiers = [s.tiers_s for s in samples if s.tiers_s is not None]
    print(
        f"pipeline latency, 202 -> visible: {args.customers} customers, concurrency "
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline_latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--customers", type=int, default=50, help="samples, one customer each")
    parser.add_argument("--concurrency", type=int, default=1, help="samples in flight at most")
    parser.add_argument("--interval", type=float, default=0.02, help="poll interval, seconds")
    parser.add_argument("--deadline", type=float, default=30.0, help="per sample, seconds")
    args = parser.parse_args(argv)
    if args.customers < 1 or args.concurrency < 1 or args.interval <= 0 or args.deadline <= 0:
        parser.error("--customers and --concurrency must be >= 1, --interval and --deadline > 0")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
