"""The notification dispatcher: messages decided and emails delivered per second, and how long
a welcome waits while a bulk run drains.

    python -m bench.dispatcher [--suppressed 20000] [--emails 20000] [--welcomes 20]
                               [--in-process 0] [--raw 3000] [--deadline 600]

Ingest and Kafka are not involved: the messages are written straight into the notifications
database with multi-row statements (`unnest`), as a bulk job would leave them, for fresh
customers whose contacts are written the same way (a time zone where it is early afternoon,
so quiet hours hold nothing; one message per customer, so the daily cap holds nothing).
They are written due in the far future and then made due with one UPDATE, which starts the
clock.
  1. decided: `--suppressed` bulk `points_expiring` messages to customers without email
     consent, which the dispatcher suppresses ("no email consent") without sending anything:
     messages decided per second, from the UPDATE until none is left scheduled.
  2. delivered: `--emails` bulk `points_expiring` messages to consenting customers, sent to
     the mail catcher of the stack: emails per second until every one is recorded as sent;
     meanwhile a `welcome` (the transactional lane) is written due now every
     `--welcome-every` seconds, `--welcomes` times, and its latency is the time from its
     commit to its recorded `sent_at` (taken after the SMTP server accepted it).
Then, in the same run, the raw limit of the mail catcher: `--raw` messages of the same size
sent by a plain aiosmtplib client over as many connections as the service's SMTP pool
(FEDELTA_NOTIFICATIONS_SMTP_CONNECTIONS, 4 by default), each kept open, one message at a time.
Every message is checked in the catcher's files by its Message-ID (`<notification id@...>`):
exits 1 when a message was delivered twice, one that should have been sent was not, one
that should not was, or a phase did not finish within `--deadline`. The rows and the mail
files the run made are deleted at the end.

The dispatchers measured are those of the running stack's notifications service (`make up`
runs the tree's code); `--in-process K` adds K dispatchers built here from the stack's
services.env (the tree's code as it is now, beside whatever the service runs), and
`--database-url` points the run at another, migrated, notifications database (a scratch one
on a shared machine, where other runs leave bulk messages due in the stack's), which only
the in-process dispatchers serve.

Reads the mail directory from .fedelta/dev.env (or FEDELTA_DEV_ENV) through
`fedelta_client.DevEnv`, and the notifications database and SMTP settings from the
services.env beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import aiosmtplib
import asyncpg

from bench.report import latency_line
from fedelta_client.devenv import REPO, DevEnv
from services.notifications.domain import templates

FAR_FUTURE = datetime(2999, 1, 1, tzinfo=UTC)
MESSAGE_ID = re.compile(rb"^Message-ID:\s*<([^@>]+)@", re.IGNORECASE | re.MULTILINE)
POLL_S = 0.25

_CONTACTS = (
    "INSERT INTO contacts (customer_id, email, locale, time_zone, consent_email, consent_sms, "
    "updated_at, profile_version, partner_id) "
    "SELECT c, c || '@bench.example', 'en', $2, $3, false, now(), 1, 'demo' "
    "FROM unnest($1::text[]) AS c"
)
_DELIVERIES = (
    "INSERT INTO deliveries (notification_id, customer_id, channel, template, status, attempts, "
    "created_at, next_attempt_at, cause_event_id, params) "
    "SELECT n, c, 'email', $3, 'scheduled', 0, now(), $4, n, CAST($5 AS jsonb) "
    "FROM unnest($1::text[], $2::text[]) AS m(n, c)"
)


@dataclass(frozen=True)
class Stack:
    dsn: str  # plain libpq form, for asyncpg
    smtp_host: str
    smtp_port: int
    smtp_connections: int
    mail_dir: Path
    env: dict[str, str]


def stack(database_url: str | None = None) -> Stack:
    dev_env = Path(os.environ.get("FEDELTA_DEV_ENV", REPO / ".fedelta" / "dev.env"))
    path = dev_env.parent / "services.env"
    if not path.exists():
        raise SystemExit(f"{path} not found: start the stack first with `make up`")
    values = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    if database_url is not None:
        values["FEDELTA_NOTIFICATIONS_DATABASE_URL"] = database_url
    return Stack(
        dsn=values["FEDELTA_NOTIFICATIONS_DATABASE_URL"].replace(
            "postgresql+asyncpg://", "postgresql://"
        ),
        smtp_host=values.get("FEDELTA_NOTIFICATIONS_SMTP_HOST", "127.0.0.1"),
        smtp_port=int(values.get("FEDELTA_NOTIFICATIONS_SMTP_PORT", "10025")),
        smtp_connections=int(values.get("FEDELTA_NOTIFICATIONS_SMTP_CONNECTIONS", "4")),
        mail_dir=DevEnv.load().mail_dir,
        env=values,
    )


def afternoon_zone(now: datetime) -> str:
    """A fixed-offset zone where it is between 12:00 and 15:00 now: far from quiet hours and
    from the end of the customers' day."""
    for offset in range(-12, 15):
        name = f"Etc/GMT{'-' if offset >= 0 else '+'}{abs(offset)}"
        if 12 <= now.astimezone(ZoneInfo(name)).hour < 15:
            return name
    raise AssertionError("some offset puts any instant in the early afternoon")


def expiry_params(now: datetime) -> dict[str, object]:
    """A points_expiring message's params, a month from expiring (never stale in the run)."""
    expires_at = now + timedelta(days=30)
    day = expires_at.date().isoformat()
    return {
        "points": 120,
        "expires_at": expires_at.isoformat(),
        "expires_on": day,
        "expires_until": day,
        "warnings": 1,
        "warning_ids": [str(uuid.uuid4())],
    }


@dataclass
class Seeded:
    run: str
    customers: list[str] = field(default_factory=list)
    notification_ids: list[str] = field(default_factory=list)


async def seed(
    pool: asyncpg.Pool, run: str, phase: str, count: int, *, consent: bool, zone: str, now: datetime
) -> Seeded:
    """`count` customers and one bulk message each, due in the far future, 5,000 a statement."""
    seeded = Seeded(run)
    params = json.dumps(expiry_params(now))
    for start in range(0, count, 5000):
        size = min(5000, count - start)
        customers = [f"bench-{run}-{phase}-{i}" for i in range(start, start + size)]
        ids = [str(uuid.uuid4()) for _ in customers]
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(_CONTACTS, customers, zone, consent)
            await conn.execute(_DELIVERIES, ids, customers, "points_expiring", FAR_FUTURE, params)
        seeded.customers += customers
        seeded.notification_ids += ids
    return seeded


async def make_due(pool: asyncpg.Pool, ids: Sequence[str]) -> float:
    """Every seeded message due now, in one statement; returns the instant it committed."""
    await pool.execute(
        "UPDATE deliveries SET next_attempt_at = now() WHERE notification_id = ANY($1::text[])",
        list(ids),
    )
    return time.monotonic()


async def wait_decided(
    pool: asyncpg.Pool, ids: Sequence[str], started: float, deadline: float
) -> tuple[float, Counter[str]]:
    """Polls until none of `ids` is still scheduled; returns the seconds it took and the
    count of each final status."""
    while True:
        rows = await pool.fetch(
            "SELECT status, count(*) AS n FROM deliveries "
            "WHERE notification_id = ANY($1::text[]) GROUP BY status",
            list(ids),
        )
        statuses = Counter({row["status"]: row["n"] for row in rows})
        if statuses["scheduled"] == 0:
            return time.monotonic() - started, statuses
        if time.monotonic() > deadline:
            raise TimeoutError(f"still scheduled after the deadline: {dict(statuses)}")
        await asyncio.sleep(POLL_S)


async def welcomes_while_draining(
    pool: asyncpg.Pool,
    run: str,
    zone: str,
    args: argparse.Namespace,
    drained: asyncio.Event,
    deadline: float,
) -> tuple[list[str], list[float]]:
    """Writes a welcome due now every `--welcome-every` seconds while the bulk drains, at most
    `--welcomes`; returns their ids and their latencies, commit to recorded sent_at."""
    ids: list[str] = []
    committed: dict[str, datetime] = {}
    for number in range(args.welcomes):
        if drained.is_set():
            break
        customer, notification_id = f"bench-{run}-welcome-{number}", str(uuid.uuid4())
        async with pool.acquire() as conn:
            async with conn.transaction():
                await conn.execute(_CONTACTS, [customer], zone, True)
                await conn.execute(
                    _DELIVERIES, [notification_id], [customer], "welcome", datetime.now(UTC), "{}"
                )
            committed[notification_id] = datetime.now(UTC)
        ids.append(notification_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(drained.wait(), timeout=args.welcome_every)
    latencies: dict[str, float] = {}
    while len(latencies) < len(ids) and time.monotonic() < deadline:
        rows = await pool.fetch(
            "SELECT notification_id, sent_at FROM deliveries "
            "WHERE notification_id = ANY($1::text[]) AND status = 'sent'",
            ids,
        )
        for row in rows:
            latencies[row["notification_id"]] = max(
                0.0, (row["sent_at"] - committed[row["notification_id"]]).total_seconds()
            )
        await asyncio.sleep(POLL_S)
    return ids, list(latencies.values())


def delivered(mail_dir: Path, since: float) -> Counter[str]:
    """How many times each Message-ID's local part (the notification id) reached the catcher
    in the files written since `since` (a time.time())."""
    seen: Counter[str] = Counter()
    for path in mail_dir.glob("*.eml"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < since:
                continue
            head = path.read_bytes()[:8192]
            found = MESSAGE_ID.search(head)
            if found:
                seen[found.group(1).decode()] += 1
    return seen


def remove_mail(mail_dir: Path, since: float, ours: set[str]) -> None:
    for path in mail_dir.glob("*.eml"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < since:
                continue
            found = MESSAGE_ID.search(path.read_bytes()[:8192])
            if found and found.group(1).decode() in ours:
                path.unlink()


async def raw_smtp(target: Stack, count: int, run: str) -> tuple[float, list[str]]:
    """A plain aiosmtplib client: `count` messages of a dispatcher email's size over
    `smtp_connections` connections kept open, one message at a time each. Returns per second."""
    body = templates.render("points_expiring", "en", expiry_params(datetime.now(UTC))).body
    ids = [f"raw-{run}-{i}" for i in range(count)]
    queue: asyncio.Queue[str] = asyncio.Queue()
    for notification_id in ids:
        queue.put_nowait(notification_id)

    async def connection() -> None:
        async with aiosmtplib.SMTP(hostname=target.smtp_host, port=target.smtp_port) as client:
            while not queue.empty():
                notification_id = queue.get_nowait()
                message = EmailMessage()
                message["From"] = "bench@fedelta.localhost"
                message["To"] = f"{notification_id}@bench.example"
                message["Subject"] = "raw"
                message["Message-ID"] = f"<{notification_id}@fedelta.localhost>"
                message.set_content(body)
                await client.send_message(message)

    started = time.monotonic()
    await asyncio.gather(*(connection() for _ in range(target.smtp_connections)))
    return count / (time.monotonic() - started), ids


async def in_process_dispatchers(target: Stack, count: int) -> list[asyncio.Task[None]]:
    """`count` dispatchers of the tree's code on the stack's database and mail catcher."""
    if count == 0:
        return []
    os.environ.update({k: v for k, v in target.env.items() if k.startswith("FEDELTA_")})
    from services.notifications.bootstrap import make_dispatcher
    from services.notifications.settings import NotificationsSettings
    from shared.clock import SystemClock
    from shared.storage.db import create_engine

    settings = NotificationsSettings()
    engine = create_engine(settings.database_url, pool_size=count + 1)
    dispatchers = [make_dispatcher(settings, engine, SystemClock()) for _ in range(count)]
    return [asyncio.create_task(d.run()) for d in dispatchers]


@dataclass
class Result:
    rate: float = 0.0
    problems: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


async def phase_decided(
    pool: asyncpg.Pool, args: argparse.Namespace, run: str, zone: str
) -> tuple[Seeded, Result]:
    result = Result()
    now = datetime.now(UTC)
    seeded = await seed(pool, run, "quiet", args.suppressed, consent=False, zone=zone, now=now)
    started = await make_due(pool, seeded.notification_ids)
    seconds, statuses = await wait_decided(
        pool, seeded.notification_ids, started, started + args.deadline
    )
    result.rate = args.suppressed / seconds
    result.lines.append(
        f"decided   {args.suppressed:>7,} messages (no consent: suppressed) in {seconds:6.1f} s:"
        f" {result.rate:7,.0f} messages/s"
    )
    if statuses != Counter({"suppressed": args.suppressed}):
        result.problems.append(f"messages without consent ended as {dict(statuses)}")
    return seeded, result


async def phase_delivered(
    pool: asyncpg.Pool, args: argparse.Namespace, run: str, zone: str
) -> tuple[Seeded, list[str], Result]:
    result = Result()
    now = datetime.now(UTC)
    seeded = await seed(pool, run, "mail", args.emails, consent=True, zone=zone, now=now)
    started = await make_due(pool, seeded.notification_ids)
    deadline = started + args.deadline
    drained = asyncio.Event()
    welcoming = asyncio.create_task(
        welcomes_while_draining(pool, run, zone, args, drained, deadline)
    )
    try:
        seconds, statuses = await wait_decided(pool, seeded.notification_ids, started, deadline)
    finally:
        drained.set()
    welcome_ids, latencies = await welcoming
    result.rate = args.emails / seconds
    result.lines.append(
        f"delivered {args.emails:>7,} emails (consenting: sent)           in {seconds:6.1f} s:"
        f" {result.rate:7,.0f} emails/s"
    )
    if latencies:
        result.lines.append(
            latency_line(
                f"{len(latencies)} welcomes written while the bulk drained, commit -> sent",
                latencies,
                (50, 99),
            )
        )
    if statuses != Counter({"sent": args.emails}):
        result.problems.append(f"messages to consenting customers ended as {dict(statuses)}")
    if len(latencies) != len(welcome_ids):
        result.problems.append(f"{len(welcome_ids) - len(latencies)} welcome(s) not sent")
    return seeded, welcome_ids, result


def check_mail(seen: Counter[str], should: set[str], should_not: set[str]) -> list[str]:
    problems = []
    twice = [n for n in should | should_not if seen[n] > 1]
    missing = [n for n in should if seen[n] == 0]
    wrong = [n for n in should_not if seen[n] > 0]
    if twice:
        problems.append(f"{len(twice)} message(s) delivered more than once, e.g. {twice[0]}")
    if missing:
        problems.append(f"{len(missing)} message(s) never reached the catcher, e.g. {missing[0]}")
    if wrong:
        problems.append(f"{len(wrong)} suppressed message(s) reached the catcher, e.g. {wrong[0]}")
    return problems


async def cleanup(pool: asyncpg.Pool, run: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM deliveries WHERE customer_id LIKE $1", f"bench-{run}-%")
        await conn.execute("DELETE FROM contacts WHERE customer_id LIKE $1", f"bench-{run}-%")


async def run(args: argparse.Namespace) -> int:
    target = stack(args.database_url)
    run_id = uuid.uuid4().hex[:8]
    zone = afternoon_zone(datetime.now(UTC))
    since = time.time() - 1
    pool = await asyncpg.create_pool(target.dsn, min_size=2, max_size=4)
    extra = await in_process_dispatchers(target, args.in_process)
    problems: list[str] = []
    ours: set[str] = set()
    try:
        quiet, decided = await phase_decided(pool, args, run_id, zone)
        ours |= set(quiet.notification_ids)
        mail, welcome_ids, sent = await phase_delivered(pool, args, run_id, zone)
        ours |= set(mail.notification_ids) | set(welcome_ids)
        raw_rate, raw_ids = await raw_smtp(target, args.raw, run_id)
        ours |= set(raw_ids)
        seen = delivered(target.mail_dir, since)
        problems = decided.problems + sent.problems
        problems += check_mail(
            seen,
            set(mail.notification_ids) | set(welcome_ids) | set(raw_ids),
            set(quiet.notification_ids),
        )
        print(
            f"dispatcher: {args.suppressed:,} + {args.emails:,} bulk messages, "
            f"{len(welcome_ids)} welcomes, {args.in_process} in-process dispatcher(s) "
            + ("alone on another database" if args.database_url else "beside the service's")
        )
        for line in decided.lines + sent.lines:
            print("  " + line)
        print(
            f"  raw limit: the mail catcher takes {raw_rate:7,.0f} emails/s from a plain "
            f"aiosmtplib client ({target.smtp_connections} connections kept open); "
            f"the dispatcher delivered {sent.rate / raw_rate:.0%} of it"
        )
    except TimeoutError as error:
        problems.append(f"a phase did not finish within {args.deadline} s: {error}")
    finally:
        for task in extra:
            task.cancel()
        await asyncio.gather(*extra, return_exceptions=True)
        await cleanup(pool, run_id)
        await pool.close()
        remove_mail(target.mail_dir, since, ours)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suppressed", type=int, default=20_000)
    parser.add_argument("--emails", type=int, default=20_000)
    parser.add_argument("--welcomes", type=int, default=20)
    parser.add_argument("--welcome-every", type=float, default=0.5)
    parser.add_argument("--raw", type=int, default=3_000)
    parser.add_argument("--in-process", type=int, default=0)
    parser.add_argument("--deadline", type=float, default=600.0)
    parser.add_argument(
        "--database-url",
        help="another notifications database (migrated) instead of the stack's: no service "
        "dispatches from it, so give --in-process",
    )
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
