"""`fedelta simulate`: sends a traffic plan at a chosen rate, waits until the services have
processed it, and checks their answers against the model of the accepted calls.

Open loop: call i is due at start + i / rate whether or not earlier calls have answered, with
at most `concurrency` calls in flight (so a slow stack is not buried under connections; the
achieved rate is reported). A call that depends on an earlier one waits for it and is skipped
if that one was not accepted.
"""

from __future__ import annotations

import asyncio
import collections
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from fedelta_cli.kafka_admin import consumer_lag, kafka_connection, total_lag
from fedelta_cli.traffic import (
    Call,
    CustomerModel,
    Observed,
    Outcome,
    Plan,
    build_model,
    check_customer,
    kinds_in,
    outcome_of,
    plan_traffic,
    unexpected,
)
from fedelta_client import DevEnv, StackClient

WRONG_SECRET = "not-the-partner-secret"  # noqa: S105 (deliberately wrong, for refused calls)


@dataclass
class Results:
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)  # why a call is an error
    started: float = 0.0
    finished: float = 0.0

    def by_kind(self, plan: Plan) -> dict[str, collections.Counter[str]]:
        table: dict[str, collections.Counter[str]] = {
            k: collections.Counter() for k in kinds_in(plan.calls)
        }
        for call in plan.calls:
            table[call.kind][self.outcomes.get(call.seq, "skipped")] += 1
        return table


async def send_plan(
    pos: StackClient,
    plan: Plan,
    *,
    rate: float,
    concurrency: int,
    on_done: Callable[[Call, Outcome], None] = lambda call, outcome: None,
) -> Results:
    results = Results(started=time.monotonic())
    done = {call.seq: asyncio.Event() for call in plan.calls}
    slots = asyncio.Semaphore(concurrency)

    async def one(call: Call) -> None:
        try:
            if call.after is not None:
                await done[call.after].wait()
                if results.outcomes.get(call.after) != "accepted":
                    results.outcomes[call.seq] = "skipped"
                    return
            async with slots:
                response = await _send_retrying(pos, plan, call)
            if isinstance(response, str):
                results.outcomes[call.seq] = "error"
                results.errors[call.seq] = response
                return
            results.statuses[call.seq] = response.status_code
            results.outcomes[call.seq] = outcome_of(call, response.status_code)
            if results.outcomes[call.seq] == "error":
                results.errors[call.seq] = f"HTTP {response.status_code}"
        finally:
            done[call.seq].set()
            on_done(call, results.outcomes.get(call.seq, "skipped"))

    tasks = []
    for call in plan.calls:
        due = results.started + call.seq / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(call)))
    await asyncio.gather(*tasks)
    results.finished = time.monotonic()
    return results


SEND_ATTEMPTS = 3


async def _send_retrying(pos: StackClient, plan: Plan, call: Call) -> httpx.Response | str:
    """As a till does: a call whose answer was lost is sent again, the same call with the same
    ids (and Idempotency-Key), so it takes effect at most once. The error's class when every
    attempt failed."""
    error = ""
    for _ in range(SEND_ATTEMPTS):
        try:
            return await _send(pos, plan, call)
        except httpx.TransportError as failure:
            error = type(failure).__name__
    return error


async def _send(pos: StackClient, plan: Plan, call: Call) -> httpx.Response:
    """Signed at ingest; a redemption (a till's call, relayed to points) under an
    Idempotency-Key of its own, kept across the attempts."""
    keyed = call.kind in ("redemption", "over-redemption")
    return await pos.send(
        call.method,
        call.path,
        dict(call.body),
        idempotency_key=f"sim-{plan.run_tag}-{call.seq}" if keyed else None,
        secret=WRONG_SECRET if call.wrong_secret else None,
    )


async def observe(pos: StackClient, customer_id: str) -> Observed:
    balance = await pos.balance(customer_id)
    tier = await pos.tier(customer_id)
    notifications = await pos.notifications(customer_id)
    entries: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await pos.ledger(customer_id, cursor=cursor)
        if page.status_code != 200:
            break
        body = page.json()
        entries.extend(body["entries"])
        cursor = body.get("next_cursor")
        if not cursor:
            break
    return Observed(
        balance=balance.json() if balance.status_code == 200 else None,
        ledger=entries,
        tier=tier.json() if tier.status_code == 200 else None,
        notifications=notifications.json().get("items", [])
        if notifications.status_code == 200
        else [],
    )


async def observe_all(
    pos: StackClient, customer_ids: list[str], concurrency: int
) -> dict[str, Observed]:
    slots = asyncio.Semaphore(concurrency)

    async def one(customer_id: str) -> tuple[str, Observed]:
        async with slots:
            return customer_id, await observe(pos, customer_id)

    return dict(await asyncio.gather(*(one(c) for c in customer_ids)))


@dataclass
class Verdict:
    problems: dict[str, list[str]]  # customer -> what disagrees
    observed: dict[str, Observed]
    lag: dict[str, dict[tuple[str, int], int]] | None


async def wait_until_processed(
    pos: StackClient,
    model: Mapping[str, CustomerModel],
    *,
    within: float,
    concurrency: int,
    console: Console,
) -> Verdict:
    """Polls, with a deadline, until every customer's answers agree with the model and no
    consumer group lags; only customers still disagreeing are asked again."""
    deadline = time.monotonic() + within
    observed: dict[str, Observed] = {}
    pending = sorted(model)
    problems: dict[str, list[str]] = {}
    lag: dict[str, dict[tuple[str, int], int]] | None = None
    with console.status("waiting for points, tiers and notifications to process it") as status:
        while True:
            fresh = await observe_all(pos, pending, concurrency)
            observed |= fresh
            problems = {
                customer: found
                for customer in pending
                if (found := check_customer(model[customer], observed[customer]))
            }
            pending = sorted(problems)
            lag = await _lag(pos.env)
            lagging = lag is not None and total_lag(lag) > 0
            status.update(
                f"waiting: {len(pending)} of {len(model)} customers not yet as expected, "
                f"consumer lag {total_lag(lag) if lag is not None else 'unknown'}"
            )
            if (not pending and not lagging) or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
    if not pending:
        # Everything agreed once; observe all of them once more for the summary's figures.
        observed = await observe_all(pos, sorted(model), concurrency)
    return Verdict(problems=problems, observed=observed, lag=lag)


async def _lag(env: DevEnv) -> dict[str, dict[tuple[str, int], int]] | None:
    if not env.kafka_bootstrap_servers:
        return None
    try:
        return await consumer_lag(kafka_connection())
    except Exception:  # the summary says "unknown"; the model check decides the verdict
        return None


@dataclass(frozen=True)
class Summary:
    run_tag: str
    calls: dict[str, collections.Counter[str]]
    unexpected: list[str]
    customers: int
    points: dict[str, int]
    tiers: collections.Counter[str]
    notifications: collections.Counter[str]
    qualifying_spend: Decimal
    lag: int | None
    lag_by_group: dict[str, int]
    problems: list[str]
    seconds: float
    achieved_rate: float

    @property
    def ok(self) -> bool:
        return not self.unexpected and not self.problems

    def as_json(self) -> dict[str, Any]:
        """For scripts and tests: `fedelta simulate --summary-json FILE`."""
        return {
            "run_tag": self.run_tag,
            "ok": self.ok,
            "calls": {kind: dict(counts) for kind, counts in self.calls.items()},
            "customers": self.customers,
            "points": self.points,
            "tiers": dict(self.tiers),
            "notifications": dict(self.notifications),
            "qualifying_spend": str(self.qualifying_spend),
            "consumer_lag": self.lag,
            "consumer_lag_by_group": self.lag_by_group,
            "unexpected": self.unexpected,
            "problems": self.problems,
            "seconds": round(self.seconds, 3),
            "achieved_rate": round(self.achieved_rate, 1),
        }


def summarise(
    plan: Plan, results: Results, model: Mapping[str, CustomerModel], verdict: Verdict
) -> Summary:
    unexpected_calls = [
        why + (f" ({results.errors[call.seq]})" if call.seq in results.errors else "")
        for call in plan.calls
        if (why := unexpected(call, results.outcomes.get(call.seq, "skipped"))) is not None
    ]
    # A dependency refused: the dependent call was never sent, which is a failure too when
    # the dependency itself was meant to be accepted (reported above for the dependency).
    points: collections.Counter[str] = collections.Counter()
    tiers: collections.Counter[str] = collections.Counter()
    notifications: collections.Counter[str] = collections.Counter()
    for customer in model:
        seen = verdict.observed.get(customer)
        if seen is None:
            continue
        if seen.balance:
            for name in ("available", "pending", "debt", "lifetime_earned"):
                points[name] += int(seen.balance.get(name, 0))
        if seen.tier:
            tiers[str(seen.tier["tier"])] += 1
        for item in seen.notifications:
            notifications[f"{item.get('channel')} {item.get('status')}"] += 1
    seconds = max(results.finished - results.started, 1e-9)
    return Summary(
        run_tag=plan.run_tag,
        calls=results.by_kind(plan),
        unexpected=unexpected_calls,
        customers=len(model),
        points=dict(points),
        tiers=tiers,
        notifications=notifications,
        qualifying_spend=sum((m.qualifying_spend for m in model.values()), Decimal(0)),
        lag=total_lag(verdict.lag) if verdict.lag is not None else None,
        lag_by_group={
            group: sum(per_partition.values())
            for group, per_partition in (verdict.lag or {}).items()
        },
        problems=[p for found in verdict.problems.values() for p in found],
        seconds=seconds,
        achieved_rate=len(results.outcomes) / seconds,
    )


def render(summary: Summary, console: Console) -> None:
    calls = Table(title="calls", title_justify="left")
    for column in ("kind", "accepted", "refused", "skipped", "error"):
        calls.add_column(column, justify="left" if column == "kind" else "right")
    for kind, counts in summary.calls.items():
        calls.add_row(kind, *(str(counts[o]) for o in ("accepted", "refused", "skipped", "error")))
    console.print(calls)
    console.print(
        f"sent in {summary.seconds:.1f} s ({summary.achieved_rate:.0f} calls/s); "
        f"{summary.customers} customers enrolled, qualifying spend {summary.qualifying_spend} "
        f"in total"
    )
    figures = Table(title="what the services answer", title_justify="left")
    figures.add_column("figure")
    figures.add_column("value", justify="right")
    for name, value in summary.points.items():
        figures.add_row(f"points {name} (sum)", str(value))
    for tier in ("bronze", "silver", "gold", "platinum"):
        figures.add_row(f"tier {tier}", str(summary.tiers.get(tier, 0)))
    for name, count in sorted(summary.notifications.items()):
        figures.add_row(f"notifications {name}", str(count))
    figures.add_row("consumer lag", "unknown" if summary.lag is None else str(summary.lag))
    for group, lag in sorted(summary.lag_by_group.items()):
        figures.add_row(f"  {group}", str(lag))
    console.print(figures)
    if summary.ok:
        console.print("[green]every accepted call had its effect, no refused call had any[/]")
        return
    for line in (summary.unexpected + summary.problems)[:30]:
        console.print(f"[red]✗[/] {line}")
    more = len(summary.unexpected) + len(summary.problems) - 30
    if more > 0:
        console.print(f"[red]… and {more} more[/]")


async def simulate(
    env: DevEnv,
    *,
    customers: int,
    purchases: int,
    rate: float,
    seed: int,
    concurrency: int,
    within: float | None,
    console: Console,
) -> Summary:
    plan = plan_traffic(
        customers=customers,
        purchases=purchases,
        seed=seed,
        run_tag=uuid.uuid4().hex[:8],
        now=datetime.now(UTC),
    )
    console.print(
        f"simulation {plan.run_tag}: {len(plan.calls)} calls "
        f"({customers} customers, {purchases} purchases, seed {seed}) at {rate:g}/s"
    )
    async with httpx.AsyncClient(
        timeout=30, limits=httpx.Limits(max_connections=concurrency)
    ) as http:
        pos = StackClient(env, http)
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[refused]} refused"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("sending", total=len(plan.calls), refused=0)
            refused = 0

            def on_done(call: Call, outcome: Outcome) -> None:
                nonlocal refused
                refused += outcome == "refused"
                progress.update(task, advance=1, refused=refused)

            results = await send_plan(
                pos, plan, rate=rate, concurrency=concurrency, on_done=on_done
            )
        model = build_model(plan, results.outcomes)
        verdict = await wait_until_processed(
            pos,
            model,
            within=within if within is not None else 60 + len(plan.calls) / 20,
            concurrency=concurrency,
            console=console,
        )
    summary = summarise(plan, results, model, verdict)
    render(summary, console)
    return summary
