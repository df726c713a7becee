"""`birthday-rewards` at 100,000 members on the real database: members seeded with SQL (one
`INSERT … SELECT … generate_series`), in eight time zones (one unknown), with birthdays spread
over the year and every hundredth member's on the job's local date, so about 1,300 are due
over several chunks. The job grants each of them once, its statements are counted (a few per
chunk, none per member) and timed, and a second run as of the same instant grants nothing.

As of an instant in 2003, on days no other test's members are born on (the other birthday
tests keep clear of them), and every row of these members deleted afterwards, the events not
yet published included."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.engagement.adapters.repositories.birthdays import birthday_repository
from services.engagement.domain.birthdays import (
    Birthday,
    BirthdayReward,
    is_birthday,
    local_date,
)
from services.engagement.domain.model import Reward
from services.engagement.jobs import BirthdayRewards
from shared.clock import SystemClock

pytestmark = pytest.mark.integration

MEMBERS = 100_000
CHUNK = 300
PREFIX = "birthdays-at-scale-"
AS_OF = datetime(2003, 3, 10, 11, 0, tzinfo=UTC)  # 9 to 11 March somewhere on Earth
ZONES = (
    "UTC",
    "Europe/Rome",
    "America/Los_Angeles",
    "Pacific/Kiritimati",
    "Etc/GMT+12",
    "Asia/Kolkata",
    "Australia/Sydney",
    "Mars/Olympus_Mons",  # unknown: as UTC
)
WITHIN_S = 20.0  # the whole run; it takes a few seconds

_SEED = (
    "INSERT INTO members (customer_id, enrolled_at, birthday_month, birthday_day, time_zone, "
    "profile_version) "
    "SELECT :prefix || lpad(i::text, 6, '0'), CAST(:as_of AS timestamptz), "
    "CAST(EXTRACT(month FROM b) AS smallint), CAST(EXTRACT(day FROM b) AS smallint), "
    "(CAST(:zones AS text[]))[1 + i % 8], 1 "
    "FROM generate_series(1, :n) AS i CROSS JOIN LATERAL (SELECT CASE WHEN i % 100 = 0 "
    "THEN (CAST(:locals AS date[]))[1 + i % 8] "
    "ELSE DATE '2000-01-01' + (i * 7) % 366 END AS b) AS born"
)
_CLEANUP = (
    "DELETE FROM birthday_grants WHERE customer_id >= :low AND customer_id < :high",
    "DELETE FROM members WHERE customer_id >= :low AND customer_id < :high",
    "DELETE FROM outbox WHERE key >= :low AND key < :high",
)


def seeded_birthday(i: int) -> tuple[Birthday, str]:
    """Member i's birthday and zone, as `_SEED` makes them."""
    zone = ZONES[i % 8]
    if i % 100 == 0:
        day = local_date(AS_OF, zone)
    else:
        day = date(2000, 1, 1) + timedelta(days=(i * 7) % 366)
    return Birthday(day.month, day.day), zone


def due_members(prefix: str) -> set[str]:
    due = set()
    for i in range(1, MEMBERS + 1):
        birthday, zone = seeded_birthday(i)
        if is_birthday(birthday, AS_OF, zone):
            due.add(f"{prefix}{i:06d}")
    return due


async def clean(engine: AsyncEngine, prefix: str) -> None:
    async with engine.begin() as conn:
        for statement in _CLEANUP:
            await conn.execute(sa.text(statement), {"low": prefix, "high": prefix + "\U0010ffff"})


@pytest.fixture
async def seeded(engine: AsyncEngine) -> AsyncIterator[str]:
    prefix = f"{PREFIX}{uuid.uuid4().hex[:8]}-"
    await clean(engine, PREFIX)  # what an interrupted run left
    async with engine.begin() as conn:
        previous = await birthday_repository(conn).birthday_reward()
        await conn.execute(
            sa.text(_SEED),
            {
                "prefix": prefix,
                "n": MEMBERS,
                "as_of": AS_OF,
                "zones": list(ZONES),
                "locals": [local_date(AS_OF, zone) for zone in ZONES],
            },
        )
        await birthday_repository(conn).set_birthday_reward(
            BirthdayReward(Reward(points=10)), AS_OF
        )
    try:
        yield prefix
    finally:
        await clean(engine, prefix)
        async with engine.begin() as conn:
            repository = birthday_repository(conn)
            if previous is None:
                await repository.stop_birthday_reward()
            else:
                await repository.set_birthday_reward(previous, AS_OF)


@contextmanager
def counted(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements the engine runs meanwhile."""
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", count)


async def granted(engine: AsyncEngine, prefix: str) -> tuple[int, int, set[int]]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT count(*), count(DISTINCT customer_id), array_agg(DISTINCT year) "
                    "FROM birthday_grants WHERE customer_id >= :low AND customer_id < :high"
                ),
                {"low": prefix, "high": prefix + "\U0010ffff"},
            )
        ).one()
    return int(rows[0]), int(rows[1]), set(rows[2] or ())


async def test_the_job_grants_each_member_due_once_in_a_few_statements_per_chunk(
    engine: AsyncEngine, seeded: str
) -> None:
    due = due_members(seeded)
    assert 1000 < len(due) < 2000
    job = BirthdayRewards(SystemClock(), chunk_size=CHUNK)

    started = time.perf_counter()
    with counted(engine) as statements:
        first = await job.run(engine, AS_OF)
    seconds = time.perf_counter() - started
    with counted(engine) as again_statements:
        again = await job.run(engine, AS_OF)

    assert first["configured"] is True
    assert int(first["rewards"]) >= len(due)  # another test's member may be born then too
    assert await granted(engine, seeded) == (len(due), len(due), {2003})
    assert again["rewards"] == 0
    # Two reads to begin with; per chunk the members due, the grants and the outbox: never
    # a statement per member.
    chunks = -(-int(first["members"]) // CHUNK) + 1
    assert len(statements) <= 2 + 3 * chunks, statements[:10]
    assert len(again_statements) <= 3
    assert seconds < WITHIN_S
    print(f"birthday-rewards: {MEMBERS} members, {len(due)} due, {seconds:.2f} s")
