"""The jobs whose work grows with the member base, at 100,000 members.

    python -m bench.jobs [--members 100000] [--timeout 900]

Seeds `--members` fresh members (ids `bench-jobs-<run>-NNNNNN`) straight into the stack's
databases, one multi-row `INSERT … SELECT … generate_series` per table, as of an instant long
before any real data (`AS_OF`, 2001), so that only these members are due:
  points: each member a lot of 100 points expiring 10 days after `AS_OF` (in the warning
          window) and one of 50 that expired 5 days before it, every tenth member with 20
          points redeemed from the expired one;
  tiers: each member gold since a year before a review 10 days after `AS_OF`, with 100.00 of
          qualifying spend (not enough to keep gold);
  notifications: each member a contact (no email consent, so the messages are suppressed,
          not mailed) and a last purchase 91 days before `AS_OF`.
Then it runs each job through its admin endpoint (`POST /v1/admin/jobs/{name}?as_of=`, the
admin token from dev.env, `fedelta_client.InternalClient`) and again as of the same instant
(which must do nothing), and prints seconds per run and members/s, the CPU the service
process used meanwhile, its resident memory before and at its peak during the run (VmRSS
sampled every 20 ms; the pid from the stack's run directory) and, beside them, the raw limit
of the same run: one multi-row INSERT of `--members` rows into a TEMP table of that service's
database, and one UPDATE of all of them. Rows of earlier runs (`bench-jobs-` ids) are deleted
first, so it can run again. bench/README.md says more.

Exits 1 when a job's summary or its effects in the database are not what the seed implies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from fedelta_client import InternalClient
from fedelta_client.devenv import REPO, DevEnv

AS_OF = datetime(2001, 6, 1, tzinfo=UTC)
PREFIX = "bench-jobs-"
RSS_POLL_S = 0.02
# The tiers review is 10 days after AS_OF; the warning is given as of AS_OF.
REVIEW_AT = AS_OF + timedelta(days=10)


# Each statement reads its members, ids `<prefix>000001` … `<prefix><n>`, from generate_series.


# --- seeds: one multi-row statement per table ----------------------------------------------

_POINTS_SEED = (
    "INSERT INTO customers (customer_id, partner_id, enrolled_at) "
    "SELECT c, 'demo', CAST(:as_of AS timestamptz) - interval '500 days' "
    "FROM (SELECT :prefix || lpad(i::text, 6, '0') AS c "
    "FROM generate_series(1, :n) AS i) AS m",
    "INSERT INTO ledger_entries (entry_id, customer_id, kind, points, reason, occurred_at, "
    "available_at, expires_at) "
    "SELECT c || '/' || k, c, 'earn', p, 'purchase', at - interval '365 days', "
    "at - interval '365 days', at "
    "FROM (SELECT :prefix || lpad(i::text, 6, '0') AS c "
    "FROM generate_series(1, :n) AS i) AS m CROSS JOIN LATERAL (VALUES "
    "('old', 50, CAST(:as_of AS timestamptz) - interval '5 days'), "
    "('new', 100, CAST(:as_of AS timestamptz) + interval '10 days')) AS l(k, p, at) "
    "ORDER BY c, at",
    "INSERT INTO ledger_entries (entry_id, customer_id, kind, points, reason, occurred_at, "
    "available_at) "
    "SELECT c || '/redeem', c, 'redeem', -20, 'reward', "
    "CAST(:as_of AS timestamptz) - interval '30 days', "
    "CAST(:as_of AS timestamptz) - interval '30 days' "
    "FROM (SELECT :prefix || lpad(i::text, 6, '0') AS c "
    "FROM generate_series(1, :n) AS i) AS m WHERE right(c, 1) = '0'",
    "INSERT INTO allocations (entry_id, lot_id, customer_id, points) "
    "SELECT c || '/redeem', c || '/old', c, 20 "
    "FROM (SELECT :prefix || lpad(i::text, 6, '0') AS c "
    "FROM generate_series(1, :n) AS i) AS m "
    "WHERE right(c, 1) = '0'",
)

_TIERS_SEED = (
    "INSERT INTO customers (customer_id, tier, since, review_at, enrolled_at) "
    "SELECT c, 'gold', CAST(:review_at AS timestamptz) - interval '365 days', "
    "CAST(:review_at AS timestamptz), CAST(:review_at AS timestamptz) - interval '400 days' "
    "FROM (SELECT :prefix || lpad(i::text, 6, '0') AS c "
    "FROM generate_series(1, :n) AS i) AS m",
    "INSERT INTO qualifying_activity (activity_id, customer_id, amount, occurred_at) "
    "SELECT c || '/p1', c, 100.00, CAST(:review_at AS timestamptz) - interval '100 days' "
    "FROM (SELECT :prefix || lpad(i::text, 6, '0') AS c "
    "FROM generate_series(1, :n) AS i) AS m",
)

_NOTIFICATIONS_SEED = (
    "INSERT INTO contacts (customer_id, email, locale, time_zone, consent_email, consent_sms, "
    "updated_at, partner_id) "
    "SELECT c, c || '@bench.invalid', 'en', 'UTC', false, false, "
    "CAST(:as_of AS timestamptz) - interval '400 days', 'demo' "
    "FROM (SELECT :prefix || lpad(i::text, 6, '0') AS c "
    "FROM generate_series(1, :n) AS i) AS m",
    "INSERT INTO purchase_activity (customer_id, last_purchase_at) "
    "SELECT c, CAST(:as_of AS timestamptz) - interval '91 days' "
    "FROM (SELECT :prefix || lpad(i::text, 6, '0') AS c "
    "FROM generate_series(1, :n) AS i) AS m",
)

# What deletes the rows of the members whose ids start with a prefix, by service (and the
# events about them not yet published).
_CLEANUP = {
    "points": (
        "DELETE FROM allocations WHERE customer_id >= :low AND customer_id < :high",
        "DELETE FROM expiry_warnings WHERE lot_id >= :low AND lot_id < :high",
        "DELETE FROM ledger_entries WHERE customer_id >= :low AND customer_id < :high",
        "DELETE FROM customer_tiers WHERE customer_id >= :low AND customer_id < :high",
        "DELETE FROM customers WHERE customer_id >= :low AND customer_id < :high",
        "DELETE FROM outbox WHERE key >= :low AND key < :high",
    ),
    "tiers": (
        "DELETE FROM qualifying_activity WHERE customer_id >= :low AND customer_id < :high",
        "DELETE FROM tier_history WHERE customer_id >= :low AND customer_id < :high",
        "DELETE FROM downgrade_warnings WHERE customer_id >= :low AND customer_id < :high",
        "DELETE FROM customers WHERE customer_id >= :low AND customer_id < :high",
        "DELETE FROM outbox WHERE key >= :low AND key < :high",
    ),
    "notifications": (
        "DELETE FROM deliveries WHERE customer_id >= :low AND customer_id < :high",
        "DELETE FROM purchase_activity WHERE customer_id >= :low AND customer_id < :high",
        "DELETE FROM contacts WHERE customer_id >= :low AND customer_id < :high",
        "DELETE FROM outbox WHERE key >= :low AND key < :high",
    ),
}


def _params(prefix: str, members: int, as_of: datetime = AS_OF) -> dict[str, Any]:
    return {
        "prefix": prefix,
        "n": members,
        "as_of": as_of,
        "review_at": as_of + (REVIEW_AT - AS_OF),
    }


async def seed_points(
    conn: AsyncConnection, prefix: str, members: int, as_of: datetime = AS_OF
) -> None:
    """Members `prefix`000001… with a lot expiring 10 days after `as_of` and one expired 5
    days before it (every tenth with 20 points redeemed from it)."""
    for statement in _POINTS_SEED:
        await conn.execute(sa.text(statement), _params(prefix, members, as_of))


async def seed_tiers(
    conn: AsyncConnection, prefix: str, members: int, as_of: datetime = AS_OF
) -> None:
    """Members gold since a year before a review 10 days after `as_of`, with 100.00 of
    qualifying spend."""
    for statement in _TIERS_SEED:
        await conn.execute(sa.text(statement), _params(prefix, members, as_of))


async def seed_notifications(
    conn: AsyncConnection, prefix: str, members: int, as_of: datetime = AS_OF
) -> None:
    """Members with a contact (no consent: suppressed, never mailed) and a last purchase 91
    days before `as_of`."""
    for statement in _NOTIFICATIONS_SEED:
        await conn.execute(sa.text(statement), _params(prefix, members, as_of))


SEEDS: dict[str, Callable[[AsyncConnection, str, int, datetime], Awaitable[None]]] = {
    "points": seed_points,
    "tiers": seed_tiers,
    "notifications": seed_notifications,
}


async def clean(conn: AsyncConnection, service: str, prefix: str) -> None:
    """Deletes the rows of every member whose id starts with `prefix`."""
    for statement in _CLEANUP[service]:
        await conn.execute(sa.text(statement), {"low": prefix, "high": prefix + "\U0010ffff"})


# --- what each job must have done -----------------------------------------------------------


@dataclass(frozen=True)
class Case:
    service: str
    job: str
    as_of: datetime
    expected: dict[str, int]  # the summary's counts on the first run; all 0 on the second
    check: Callable[[AsyncConnection, str, int], Awaitable[list[str]]]


async def _scalar_row(conn: AsyncConnection, sql: str, prefix: str) -> tuple[int, ...]:
    bounds = {"low": prefix, "high": prefix + "\U0010ffff", "review_at": REVIEW_AT}
    row = (await conn.execute(sa.text(sql), bounds)).one()
    return tuple(int(value or 0) for value in row)


def _differs(what: str, got: tuple[int, ...], wanted: tuple[int, ...]) -> list[str]:
    return [] if got == wanted else [f"{what}: {got}, expected {wanted}"]


async def check_warnings(conn: AsyncConnection, prefix: str, members: int) -> list[str]:
    got = await _scalar_row(
        conn,
        "SELECT count(*) FROM expiry_warnings WHERE lot_id >= :low AND lot_id < :high",
        prefix,
    )
    return _differs("lots warned", got, (members,))


async def check_expiries(conn: AsyncConnection, prefix: str, members: int) -> list[str]:
    got = await _scalar_row(
        conn,
        "SELECT count(*), -sum(points) FROM ledger_entries WHERE kind = 'expire' "
        "AND customer_id >= :low AND customer_id < :high",
        prefix,
    )
    return _differs("expiries, points expired", got, (members, 50 * members - 20 * (members // 10)))


async def check_win_backs(conn: AsyncConnection, prefix: str, members: int) -> list[str]:
    got = await _scalar_row(
        conn,
        "SELECT count(*), count(DISTINCT customer_id) FROM deliveries "
        "WHERE template = 'win_back' AND customer_id >= :low AND customer_id < :high",
        prefix,
    )
    return _differs("win-back messages, members", got, (members, members))


async def check_downgrade_warnings(conn: AsyncConnection, prefix: str, members: int) -> list[str]:
    got = await _scalar_row(
        conn,
        "SELECT count(*) FROM downgrade_warnings WHERE customer_id >= :low AND customer_id < :high",
        prefix,
    )
    return _differs("downgrade warnings", got, (members,))


async def check_reviews(conn: AsyncConnection, prefix: str, members: int) -> list[str]:
    got = await _scalar_row(
        conn,
        "SELECT count(*) FILTER (WHERE tier = 'silver'), "
        "count(*) FILTER (WHERE review_at > :review_at) FROM customers "
        "WHERE customer_id >= :low AND customer_id < :high",
        prefix,
    )
    return _differs("members down to silver, reviews moved on", got, (members, members))


def cases(members: int) -> list[Case]:
    every = members
    return [
        Case("points", "warn-expiring", AS_OF, {"warnings": every}, check_warnings),
        Case("points", "expire-points", AS_OF, {"expired_lots": every}, check_expiries),
        Case(
            "notifications",
            "win-back",
            AS_OF,
            {"lapsed": every, "scheduled": every},
            check_win_backs,
        ),
        Case(
            "tiers",
            "warn-downgrades",
            AS_OF,
            {"customers": every, "warnings": every},
            check_downgrade_warnings,
        ),
        Case(
            "tiers",
            "review-tiers",
            REVIEW_AT,
            {"customers": every, "downgrades": every},
            check_reviews,
        ),
    ]


# --- measuring ------------------------------------------------------------------------------


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User and system CPU the process has used (its API, consumer and relay together)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Memory:
    pid: int
    before_kib: int = 0
    peak_kib: int = 0
    cpu_s: float = 0.0  # the process's CPU during the run

    async def sample(self, stop: asyncio.Event) -> None:
        self.before_kib = self.peak_kib = _kib(self.pid, "VmRSS")
        while not stop.is_set():
            self.peak_kib = max(self.peak_kib, _kib(self.pid, "VmRSS"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RSS_POLL_S)
        self.peak_kib = max(self.peak_kib, _kib(self.pid, "VmRSS"))


def service_pid(run_dir: Path, service: str, url: str) -> int:
    """The pid of the instance at `url`, from the stack's run directory: `<service>.pid`, or
    `<service>-<port>.pid` for a further instance (deploy/local/services.sh names them so)."""
    further = run_dir / f"{service}-{urlsplit(url).port}.pid"
    path = further if further.exists() else run_dir / f"{service}.pid"
    return int(path.read_text().split()[0])


async def timed_job(
    client: InternalClient, case: Case, pid: int
) -> tuple[float, dict[str, Any], Memory]:
    memory, stop = Memory(pid), asyncio.Event()
    sampler = asyncio.create_task(memory.sample(stop))
    await asyncio.sleep(0)
    started, cpu = time.perf_counter(), cpu_seconds(pid)
    try:
        summary = await client.run_job(case.service, case.job, case.as_of.isoformat())
    finally:
        elapsed = time.perf_counter() - started
        memory.cpu_s = cpu_seconds(pid) - cpu
        stop.set()
        await sampler
    return elapsed, summary, memory


async def raw_limit(engine: AsyncEngine, members: int) -> tuple[float, float]:
    """Seconds for one multi-row INSERT of `members` member-sized rows into a TEMP table, and
    for one UPDATE of all of them, in one transaction (rolled back)."""
    async with engine.connect() as conn, conn.begin() as transaction:
        await conn.execute(
            sa.text(
                "CREATE TEMP TABLE bench_raw (customer_id text PRIMARY KEY, points integer, "
                "at timestamptz) ON COMMIT DROP"
            )
        )
        started = time.perf_counter()
        await conn.execute(
            sa.text(
                "INSERT INTO bench_raw SELECT c, 100, CAST(:as_of AS timestamptz) "
                "FROM (SELECT :prefix || lpad(i::text, 6, '0') AS c "
                "FROM generate_series(1, :n) AS i) AS m"
            ),
            _params("raw-", members),
        )
        inserted = time.perf_counter() - started
        started = time.perf_counter()
        await conn.execute(sa.text("UPDATE bench_raw SET points = points - 1, at = now()"))
        updated = time.perf_counter() - started
        await transaction.rollback()
    return inserted, updated


# --- the run --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    env: DevEnv
    run_dir: Path
    engines: dict[str, AsyncEngine]


def open_stack() -> Stack:
    dev_env = Path(os.environ.get("FEDELTA_DEV_ENV", REPO / ".fedelta" / "dev.env"))
    services_env = dev_env.parent / "services.env"
    if not services_env.exists():
        raise SystemExit(f"{services_env} not found: start the stack first with `make up`")
    values = dict(
        line.split("=", 1) for line in services_env.read_text().splitlines() if "=" in line
    )
    engines = {
        service: create_async_engine(values[f"FEDELTA_{service.upper()}_DATABASE_URL"])
        for service in SEEDS
    }
    return Stack(DevEnv.load(dev_env), dev_env.parent / "run", engines)


async def prepare(stack: Stack, prefix: str, members: int) -> None:
    for service, seed in SEEDS.items():
        started = time.perf_counter()
        async with stack.engines[service].begin() as conn:
            await clean(conn, service, PREFIX)
        cleaned = time.perf_counter() - started
        async with stack.engines[service].begin() as conn:
            await seed(conn, prefix, members, AS_OF)
        # The deleted rows' index entries gone and fresh statistics: as a database that does
        # not lose 100,000 members at once would be.
        async with stack.engines[service].connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text("VACUUM ANALYZE"))
        print(
            f"{service}: earlier runs' rows deleted in {cleaned:.1f} s, {members:,} members "
            f"seeded in {time.perf_counter() - started - cleaned:.1f} s"
        )


def _report(run: str, elapsed: float, memory: Memory, members: int) -> None:
    grew = (memory.peak_kib - memory.before_kib) / 1024
    print(
        f"  {run:<6} {elapsed:8.2f} s  {members / elapsed:10,.0f} members/s  "
        f"CPU {memory.cpu_s:6.2f} s  "
        f"RSS {memory.before_kib / 1024:4.0f} MiB -> peak {memory.peak_kib / 1024:4.0f} MiB "
        f"(+{grew:.0f})"
    )


async def run_case(
    stack: Stack, client: InternalClient, case: Case, prefix: str, members: int
) -> list[str]:
    pid = service_pid(stack.run_dir, case.service, stack.env.service_url(case.service))
    inserted, updated = await raw_limit(stack.engines[case.service], members)
    print(
        f"{case.service} {case.job} as of {case.as_of.isoformat()} ({members:,} members; raw "
        f"limit: INSERT {inserted:.2f} s, UPDATE {updated:.2f} s of {members:,} rows)"
    )
    failures: list[str] = []
    for run, expected in (("first", case.expected), ("again", dict.fromkeys(case.expected, 0))):
        elapsed, summary, memory = await timed_job(client, case, pid)
        _report(run, elapsed, memory, members)
        [result] = [job for job in summary.get("jobs", []) if job.get("job") == case.job]
        got = {key: result.get(key) for key in expected}
        if got != expected:
            failures.append(f"{case.job} ({run}): summary {got}, expected {expected}")
    async with stack.engines[case.service].connect() as conn:
        failures += [f"{case.job}: {f}" for f in await case.check(conn, prefix, members)]
    return failures


async def run(args: argparse.Namespace) -> int:
    stack = open_stack()
    prefix = f"{PREFIX}{uuid.uuid4().hex[:6]}-"
    try:
        await prepare(stack, prefix, args.members)
        async with httpx.AsyncClient(timeout=args.timeout) as http:
            client = InternalClient.from_dev_env(http, stack.env, admin=True)
            failures: list[str] = []
            for case in cases(args.members):
                if args.only and case.job not in args.only:
                    continue
                failures += await run_case(stack, client, case, prefix, args.members)
    finally:
        for engine in stack.engines.values():
            await engine.dispose()
    for failure in failures:
        print(f"WRONG: {failure}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.jobs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds a job may take (deadline)"
    )
    parser.add_argument("--only", nargs="*", help="job names to run (default: all)")
    args = parser.parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
