"""Hard-kill every part of Fedelta under load, then prove nothing was lost or doubled.

    python -m chaos --seed 7 --calls 10000          # what `make chaos` runs
    python -m chaos --seed 1 --calls 300 --pg-port 15472 ...   # a smaller run

Starts its own stack (own state directory and ports, two instances of every service), drives
signed POS calls at ingest and till calls at points while a seeded scheduler SIGKILLs and
restarts each service instance, the Kafka broker and PostgreSQL, and forces consumer-group
rebalances; then waits for quiescence and compares everything with a model recomputed from the
answers. Prints a summary; exits 1 on any difference. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from chaos.stack import CONSUMERS, REPO, SERVICE_PORT_SPAN, SERVICES, ChaosStack, Ports, Target
from chaos.traffic import CustomerModel, CustomerScript, Driver, Endpoints, Tally, plan_calls
from chaos.verify import ChaosCard, Findings, asyncpg_dsn, verify, wait_for_quiescence

MAX_CALLS = 100_000
MAX_DURATION_S = 4 * 3600


@dataclass
class Kills:
    by_target: Counter[str] = field(default_factory=Counter)
    rebalances: Counter[str] = field(default_factory=Counter)


class Scheduler:
    """Kills at seeded random moments: every target at least once, in a shuffled order, then
    more at random while the traffic lasts; now and then a rebalance (a third instance of a
    consumer service joins its group, works a while, then is killed). A killed part restarts
    in the background after a random down time, so crashes overlap as they do in real life;
    a part is never killed again while it is still coming back."""

    def __init__(self, stack: ChaosStack, rng: random.Random, *, gap_s: tuple[float, float]):
        self.stack = stack
        self.rng = rng
        self.gap_s = gap_s
        self.kills = Kills()
        self._coming_back: dict[str, asyncio.Task[None]] = {}
        self._all: list[asyncio.Task[None]] = []

    async def run(self, traffic_done: asyncio.Event) -> None:
        must = self.stack.targets()
        self.rng.shuffle(must)
        rebalance_owed = list(CONSUMERS)
        while must or rebalance_owed or not traffic_done.is_set():
            await self._pause(traffic_done)
            if rebalance_owed and (not must or self.rng.random() < 0.3):
                service = rebalance_owed.pop(self.rng.randrange(len(rebalance_owed)))
                self._background(f"rebalance {service}", self._rebalance(service))
                continue
            candidates = [
                t for t in (must or self.stack.targets()) if t.name not in self._coming_back
            ]
            if not candidates:
                await asyncio.wait(list(self._coming_back.values()), return_when="FIRST_COMPLETED")
                continue
            target = self.rng.choice(candidates)
            if target in must:
                must.remove(target)
            await self._crash(target)
        await asyncio.gather(*self._all)  # every part back up; a failed restart fails the run

    def _background(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._coming_back[name] = task
        self._all.append(task)
        task.add_done_callback(lambda _: self._coming_back.pop(name, None))

    async def _pause(self, traffic_done: asyncio.Event) -> None:
        """A random gap, cut short once the traffic is over (the owed kills then follow one
        another, under the backlog the consumers are still working through)."""
        gap = self.rng.uniform(*self.gap_s)
        if traffic_done.is_set():
            gap = min(gap, 1.0)
        try:
            await asyncio.wait_for(traffic_done.wait(), timeout=gap)
        except TimeoutError:
            return
        await asyncio.sleep(min(gap, 1.0))  # a short, seeded spacing between owed kills

    async def _crash(self, target: Target) -> None:
        print(f"chaos: {time.strftime('%H:%M:%S')} SIGKILL {target.name}", flush=True)
        await self.stack.kill(target)
        self.kills.by_target[target.name] += 1
        down_for = self.rng.uniform(0.5, 3.0)

        async def come_back() -> None:
            await asyncio.sleep(down_for)  # how long the part stays down
            try:
                await self.stack.restart(target)
            except Exception:
                print(f"chaos: {target.name} did not come back: see the runner log", flush=True)
                raise
            print(f"chaos: {time.strftime('%H:%M:%S')} {target.name} back", flush=True)

        self._background(target.name, come_back())

    async def _rebalance(self, service: str) -> None:
        print(
            f"chaos: {time.strftime('%H:%M:%S')} rebalance {service}: a third instance joins",
            flush=True,
        )
        extra = await self.stack.start_extra(service)
        await asyncio.sleep(self.rng.uniform(1.0, 4.0))  # let it take partitions and work
        await self.stack.kill(extra)
        print(f"chaos: {time.strftime('%H:%M:%S')} rebalance {service}: it is killed", flush=True)
        self.kills.rebalances[service] += 1


CHAOS_REWARD = {"name": "Chaos coffee", "points_cost": 20, "kind": "coupon"}


async def with_reward(endpoints: Endpoints) -> Endpoints:
    """The catalogue's reward the customers redeem at the till, created by the administrator
    before the traffic starts (retried like any call while points is starting)."""
    async with httpx.AsyncClient(timeout=15, trust_env=False) as http:
        driver = Driver(endpoints, http, Tally(), answer_deadline_s=120, rate=100)
        response = await driver.request("reward", "points", "POST", "/v1/rewards", CHAOS_REWARD)
    if response is None or response.status_code != 201:
        raise RuntimeError(f"chaos: the reward was not created: {response and response.text}")
    cost = int(str(CHAOS_REWARD["points_cost"]))
    return dataclasses.replace(endpoints, reward_id=response.json()["id"], reward_cost=cost)


CHAOS_CARD = {"name": "Chaos card", "stamps_required": 3, "reward": {"points": 7}}


async def with_stamp_card(url: str, admin_token: str) -> ChaosCard:
    """A stamp card every purchase of the run qualifies for (a stamp each, 7 points every
    third), so that the kills also hit engagement's completions, revocations and points'
    grants; created before the traffic, retried while engagement is starting."""
    starts_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 400 * 86400))
    body = {**CHAOS_CARD, "starts_at": starts_at}
    headers = {"Authorization": f"Bearer {admin_token}", "Idempotency-Key": str(uuid.uuid4())}
    deadline = time.monotonic() + 120
    answer = "no answer"
    async with httpx.AsyncClient(timeout=15, trust_env=False) as http:
        while time.monotonic() < deadline:
            try:
                response = await http.post(f"{url}/v1/stamp-cards", json=body, headers=headers)
            except httpx.TransportError as error:
                answer = type(error).__name__
            else:
                if response.status_code == 201:
                    card_id: str = response.json()["id"]
                    return ChaosCard(card_id, int(str(CHAOS_CARD["stamps_required"])), 7)
                answer = f"{response.status_code} {response.text[:200]}"
            await asyncio.sleep(0.5)
    raise RuntimeError(f"chaos: the stamp card was not created: {answer}")


async def drive(
    endpoints: Endpoints,
    customers: Sequence[tuple[CustomerModel, int, random.Random]],
    tally: Tally,
    *,
    concurrency: int,
    rate: float,
    stop: asyncio.Event,
) -> None:
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=15, limits=limits, trust_env=False) as http:
        driver = Driver(endpoints, http, tally, answer_deadline_s=300, rate=rate)
        queue: asyncio.Queue[tuple[CustomerModel, int, random.Random]] = asyncio.Queue()
        for entry in customers:
            queue.put_nowait(entry)

        async def worker() -> None:
            while not queue.empty() and not stop.is_set():
                model, calls, rng = queue.get_nowait()
                await CustomerScript(driver, model, rng).run(calls, stop)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def summary(
    args: argparse.Namespace,
    tally: Tally,
    kills: Kills,
    findings: Findings,
    quiescence_s: float,
    traffic_s: float,
) -> str:
    lines = [f"chaos run: seed {args.seed}, {tally.calls} calls in {traffic_s:.0f} s"]
    lines.append("calls by kind and answer:")
    for (kind, answer), count in sorted(tally.answers.items()):
        lines.append(f"  {kind:<20} {answer:<10} {count:>7}")
    lines.append(f"  retried attempts (no definite answer yet): {tally.retries}")
    lines.append("kills by target:")
    for target, count in sorted(kills.by_target.items()):
        lines.append(f"  {target:<20} {count:>3}")
    for service, count in sorted(kills.rebalances.items()):
        lines.append(f"  rebalance {service:<10} {count:>3}")
    lines.append("events per topic:")
    for topic, count in sorted(findings.events_per_topic.items()):
        lines.append(f"  {topic:<28} {count:>7}")
    lines.append(
        f"  redelivered records on the purchases topic (deduplicated by the inboxes): "
        f"{findings.redelivered_records}"
    )
    lines.append(f"dead-lettered: {findings.dead_letters}")
    lines.append(
        f"mail files: {findings.mail_files}, of them SMTP re-sends "
        f"(at-least-once by design): {findings.mail_duplicates}"
    )
    lines.append(f"time to quiescence: {quiescence_s:.1f} s")
    lines.append(
        f"lost: {findings.lost}, duplicated: {findings.duplicated}, "
        f"differences: {len(findings.differences)}"
    )
    for difference in findings.differences[:30]:
        lines.append(f"  DIFFERENCE {difference}")
    if len(findings.differences) > 30:
        lines.append(f"  ... and {len(findings.differences) - 30} more")
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> int:
    ports = Ports(
        args.pg_port, args.kafka_port, args.kafka_port + 1, args.smtp_port, args.service_port_base
    )
    stack = ChaosStack(args.state_dir, ports)
    rng = random.Random(args.seed)
    print(f"chaos: fresh stack in {stack.state_dir} (log {stack.log_file})", flush=True)
    await asyncio.to_thread(stack.fresh)
    try:
        await asyncio.to_thread(stack.up)
        secrets = stack.env_file("secrets.env")
        services_env = stack.env_file("services.env")
        endpoints = Endpoints(
            ingest=tuple(f"http://127.0.0.1:{p}" for p in ports.instances("ingest")),
            points=tuple(f"http://127.0.0.1:{p}" for p in ports.instances("points")),
            partner_key=secrets["FEDELTA_PARTNER_KEY"],
            partner_secret=secrets["FEDELTA_PARTNER_SECRET"],
            admin_token=secrets["FEDELTA_POINTS_ADMIN_TOKEN"],
        )
        endpoints = await with_reward(endpoints)
        card = await with_stamp_card(
            f"http://127.0.0.1:{ports.instances('engagement')[0]}",
            secrets["FEDELTA_ENGAGEMENT_ADMIN_TOKEN"],
        )
        run_prefix = f"chaos-{args.seed}-{uuid.uuid4().hex[:6]}-"
        plan = []
        for index, calls in enumerate(plan_calls(args.calls, rng)):
            customer_rng = random.Random(f"{args.seed}:{index}")
            customer_id = f"{run_prefix}{index}"
            model = CustomerModel(
                customer_id, f"{customer_id}@example.com", customer_rng.random() < 0.7
            )
            plan.append((model, calls, customer_rng))
        tally = Tally()
        stop, traffic_done = asyncio.Event(), asyncio.Event()
        scheduler = Scheduler(stack, rng, gap_s=(args.min_gap, args.max_gap))
        started = time.monotonic()
        traffic_time: list[float] = []

        async def traffic() -> None:
            # At --duration no new operation starts; the calls in flight still get their
            # answers (a call cut off would leave the model unsure of its effect).
            loop = asyncio.get_running_loop()
            timer = loop.call_later(args.duration, stop.set)
            try:
                await drive(
                    endpoints,
                    plan,
                    tally,
                    concurrency=args.concurrency,
                    rate=args.rate,
                    stop=stop,
                )
            finally:
                timer.cancel()
                if stop.is_set():
                    print("chaos: --duration reached; no more calls were made", flush=True)
                traffic_done.set()
                traffic_time.append(time.monotonic() - started)

        await asyncio.gather(traffic(), scheduler.run(traffic_done))
        traffic_s = traffic_time[0]
        print(
            f"chaos: traffic done ({tally.calls} calls); every part up; waiting for quiescence",
            flush=True,
        )
        await asyncio.to_thread(stack.script, "services.sh", "start")
        dsns = {
            service: asyncpg_dsn(services_env[f"FEDELTA_{service.upper()}_DATABASE_URL"])
            for service in SERVICES
        }
        quiescence_s = await wait_for_quiescence(
            dsns, stack.kafka, run_prefix, within=args.quiescence_timeout
        )
        findings = await verify(
            [model for model, _, _ in plan],
            dsns=dsns,
            bootstrap=stack.kafka,
            points_url=endpoints.points[0],
            tiers_url=f"http://127.0.0.1:{ports.instances('tiers')[0]}",
            points_read_token=secrets["FEDELTA_POINTS_READ_TOKEN"],
            tiers_read_token=secrets["FEDELTA_TIERS_READ_TOKEN"],
            mail_dir=stack.mail_dir,
            card=card,
        )
        untouched = {t.name for t in stack.targets()} - set(scheduler.kills.by_target)
        if untouched:
            findings.differences.append(f"never killed: {sorted(untouched)}")
        print(summary(args, tally, scheduler.kills, findings, quiescence_s, traffic_s), flush=True)
        return 1 if findings.differences else 0
    finally:
        if not args.keep_running:
            await asyncio.to_thread(stack.down)


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--calls", type=_bounded(10, MAX_CALLS), default=10_000)
    parser.add_argument(
        "--duration",
        type=_bounded(10, MAX_DURATION_S),
        default=3600,
        help="seconds of traffic at most (then no more calls are made)",
    )
    parser.add_argument("--quiescence-timeout", type=_bounded(10, 3600), default=900)
    parser.add_argument(
        "--rate",
        type=float,
        default=25.0,
        help="new calls per second at most, so that the traffic spans the kills",
    )
    parser.add_argument("--concurrency", type=_bounded(1, 64), default=12)
    parser.add_argument(
        "--min-gap", type=float, default=5.0, help="seconds between kills, at least"
    )
    parser.add_argument(
        "--max-gap", type=float, default=20.0, help="seconds between kills, at most"
    )
    parser.add_argument("--state-dir", default=str(REPO / ".fedelta" / "chaos"))
    parser.add_argument("--pg-port", type=_bounded(1024, 32767), default=15462)
    parser.add_argument(
        "--kafka-port",
        type=_bounded(1024, 32766),
        default=19212,
        help="the controller listens on the next port",
    )
    parser.add_argument(
        "--smtp-port",
        type=_bounded(1024, 32766),
        default=10036,
        help="the SMS provider stand-in listens on the next port",
    )
    parser.add_argument(
        "--service-port-base",
        type=_bounded(1024, 32768 - SERVICE_PORT_SPAN),
        default=18090,
        help=(
            f"{SERVICE_PORT_SPAN} ports from here: 2 instances of {len(SERVICES)} services, "
            f"{len(CONSUMERS)} rebalancers"
        ),
    )
    parser.add_argument("--keep-running", action="store_true", help="leave the stack up after")
    args = parser.parse_args(argv)
    args.state_dir = Path(args.state_dir).resolve()
    if not 0.1 <= args.rate <= 1000:
        parser.error("--rate is between 0.1 and 1000 calls a second")
    if not 0 < args.min_gap <= args.max_gap <= 600:
        parser.error("need 0 < --min-gap <= --max-gap <= 600")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
