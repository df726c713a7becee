"""Qualifying activity summed per member and day (issue 24) on the real database: the triggers
keep `qualifying_buckets` equal to the activity summed whatever writes it (the consumer, a
job, a replay, a bench's or a test's own statements, revision 0009's backfill of what was
there), and a member with 1,000 purchases of history climbs on their buckets."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.tiers.adapters.repositories import common
from services.tiers.adapters.repositories.common import activity_of
from services.tiers.adapters.tables import (
    qualifying_activity,
    qualifying_buckets,
    qualifying_months,
)
from services.tiers.domain.buckets import (
    ActivityBucket,
    BucketKey,
    buckets_of,
    merged,
    window,
    year_zone,
)
from services.tiers.domain.model import Program, QualifyingActivity, SpendBasis
from tests.integration.tiers.test_tiers import purchase, send, wait_for_spend
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


# Every bucket as the activity sums it, beside the stored one: a row in either alone, or
# differing, is a bucket the triggers got wrong (days, or months).
def _mismatches(table: str, unit: str) -> sa.TextClause:
    return sa.text(
        f"WITH expected AS (SELECT customer_id, "
        f"CAST(date_trunc('{unit}', timezone('UTC', occurred_at)) AS date) AS day, "
        f"CAST(date_trunc('{unit}', timezone('UTC', COALESCE(attributed_at, occurred_at))) "
        "AS date) AS spent_day, "
        "sum(amount) AS amount, sum(visits) AS visits, sum(referrals) AS referrals, "
        "count(*) AS activities, min(occurred_at) AS first_at, max(occurred_at) AS last_at, "
        "min(COALESCE(attributed_at, occurred_at)) AS first_spent_at, "
        "max(COALESCE(attributed_at, occurred_at)) AS last_spent_at "
        f"FROM qualifying_activity GROUP BY 1, 2, 3) "
        f"SELECT count(*) FROM expected AS e FULL JOIN {table} AS b "
        "ON (b.customer_id, b.day, b.spent_day) = (e.customer_id, e.day, e.spent_day) "
        "WHERE (e.amount, e.visits, e.referrals, e.activities, e.first_at, e.last_at, "
        "e.first_spent_at, e.last_spent_at) IS DISTINCT FROM (b.amount, b.visits, b.referrals, "
        "b.activities, b.first_at, b.last_at, b.first_spent_at, b.last_spent_at)"
    )


async def test_the_buckets_are_the_activity_summed_whatever_wrote_it(engine: AsyncEngine) -> None:
    """Over the whole stack: what every other test, and the backfill, left (one snapshot)."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ")
        for table, unit in (("qualifying_buckets", "day"), ("qualifying_months", "month")):
            assert (await conn.execute(_mismatches(table, unit))).scalar_one() == 0, table


def _row(customer: str, n: int, amount: str, at: datetime, **columns: object) -> dict[str, object]:
    return {
        "activity_id": f"purchase:demo:{customer}-{n}",
        "customer_id": customer,
        "amount": Decimal(amount),
        "occurred_at": at,
        "attributed_at": None,  # every row names the same columns (one executemany)
        "visits": 1,
        **columns,
    }


async def _buckets(engine: AsyncEngine, customer: str) -> tuple[list[ActivityBucket], ...]:
    """The stored buckets of the customer, and the ones their activity makes."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(qualifying_activity).where(qualifying_activity.c.customer_id == customer)
        )
        expected = buckets_of(activity_of(row) for row in rows)
        stored = await conn.execute(
            sa.select(qualifying_buckets)
            .where(qualifying_buckets.c.customer_id == customer)
            .order_by(qualifying_buckets.c.day, qualifying_buckets.c.spent_day)
        )
        found = [
            ActivityBucket(
                BucketKey(b.customer_id, b.day, b.spent_day),
                b.amount,
                b.visits,
                b.referrals,
                b.first_at,
                b.last_at,
                b.first_spent_at,
                b.last_spent_at,
            )
            for b in stored
        ]
    return found, expected


async def test_inserting_deleting_and_updating_activity_keeps_its_buckets(
    engine: AsyncEngine,
) -> None:
    customer = f"tiers-buckets-{uuid.uuid4()}"
    day = datetime(2003, 3, 3, 23, 30, tzinfo=UTC)
    rows = [
        _row(customer, 1, "300", day),
        _row(customer, 2, "250.50", day + timedelta(minutes=40)),  # the next UTC day
        _row(customer, 3, "100", day - timedelta(hours=2)),
        _row(
            customer,
            4,
            "-50",
            day + timedelta(days=40),
            attributed_at=day,
            visits=0,
            activity_id=f"refund:demo:{customer}-4",
        ),
    ]
    insert = upsert(qualifying_activity)
    async with engine.begin() as conn:
        await conn.execute(insert, rows)
    async with engine.begin() as conn:  # one again, and a new one: only the new one counts
        await conn.execute(
            insert.on_conflict_do_nothing(),
            [rows[0], _row(customer, 5, "7", day - timedelta(minutes=1))],
        )
    stored, expected = await _buckets(engine, customer)
    assert stored == expected
    assert len(stored) == 3  # 3 March (three purchases), 4 March, and the refund's own
    assert sum(b.amount for b in stored) == Decimal("607.50")

    async with engine.begin() as conn:
        await conn.execute(
            sa.update(qualifying_activity)
            .where(qualifying_activity.c.activity_id == rows[0]["activity_id"])
            .values(occurred_at=day + timedelta(days=2), amount=Decimal(1))
        )
        await conn.execute(
            sa.delete(qualifying_activity).where(
                qualifying_activity.c.activity_id == rows[2]["activity_id"]
            )
        )
    stored, expected = await _buckets(engine, customer)
    assert stored == expected
    assert sum(b.amount for b in stored) == Decimal("208.50")
    async with engine.connect() as conn:
        months = await conn.execute(
            sa.select(qualifying_months.c.day, qualifying_months.c.amount)
            .where(qualifying_months.c.customer_id == customer)
            .order_by(qualifying_months.c.day, qualifying_months.c.spent_day)
        )
        # March: 250.50 + 7 + 1 (moved within it); April: the refund of a March purchase.
        assert [(m.day.month, m.amount) for m in months] == [(3, Decimal("258.50")), (4, -50)]

    async with engine.begin() as conn:
        await conn.execute(
            sa.delete(qualifying_activity).where(qualifying_activity.c.customer_id == customer)
        )
    assert await _buckets(engine, customer) == ([], [])
    async with engine.connect() as conn:
        left = sa.select(sa.func.count()).where(qualifying_months.c.customer_id == customer)
        assert (await conn.execute(left)).scalar_one() == 0


async def test_a_member_with_a_thousand_purchases_climbs_on_their_buckets(
    stack: Stack, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """1,000 purchases in the last year, 490.00 in all, and 1,000.00 more than a year ago:
    a purchase of 10 makes them silver with a qualifying spend of exactly 500."""
    customer = f"tiers-buckets-{uuid.uuid4()}"
    now = datetime.now(UTC)
    history = [
        _row(customer, n, "0.49", now - timedelta(days=360, hours=1) + timedelta(hours=8 * n))
        for n in range(1000)
    ]
    older = [_row(customer, 1000 + n, "500", now - timedelta(days=366 + n)) for n in range(2)]
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO customers (customer_id, tier, since, review_at) "
                "VALUES (:id, 'bronze', :since, :review_at)"
            ),
            {"id": customer, "since": now - timedelta(days=400), "review_at": now + timedelta(1)},
        )
        await conn.execute(sa.insert(qualifying_activity), [*history, *older])
    await send(stack, purchase(customer, "10", now))

    body = await wait_for_spend(client, customer, "500")
    assert (body["tier"], body["qualifying_visits"]) == ("silver", 1001)
    assert datetime.fromisoformat(body["since"]) == now


@pytest.mark.parametrize(
    "program",
    [
        Program(),
        Program(qualifying_window_days=2),
        Program(basis=SpendBasis.CALENDAR_YEAR, time_zone="Europe/Helsinki"),
        Program(basis=SpendBasis.CALENDAR_YEAR, time_zone="America/New_York"),
    ],
    ids=["rolling", "rolling-2-days", "calendar-helsinki", "calendar-new-york"],
)
async def test_the_database_answers_a_window_as_the_domain_sums_it(
    engine: AsyncEngine, program: Program
) -> None:
    """`buckets_since`'s statement is `domain.buckets.merged`: for windows cut at activity
    instants, a window after them, and a calendar year's start, row for row."""
    customer = f"tiers-buckets-{uuid.uuid4()}"
    start = datetime(2004, 12, 30, 20, 30, tzinfo=UTC)
    picks = random.Random(24)
    rows = [
        _row(customer, n, str(picks.choice([1, 5, 120, 480])), start + timedelta(minutes=m))
        for n, m in enumerate(sorted(picks.sample(range(0, 60 * 24 * 40), 300)))
    ]
    rows += [
        _row(
            customer,
            1000 + n,
            "-1",
            start + timedelta(days=3 + n, hours=n),
            attributed_at=start + timedelta(hours=n),
            visits=0,
            activity_id=f"refund:demo:{customer}-{n}",
        )
        for n in range(6)
    ]
    async with engine.begin() as conn:
        await conn.execute(sa.insert(qualifying_activity), rows)
    buckets = buckets_of(_activity(row) for row in rows)
    for n in range(20):
        at = {_at(picks, rows, program) for _ in range(picks.randint(1, 4))}
        since = program.earliest_counted(min(at))
        looked_at = window(program, since, at, picks.choice([None, min(at)]))
        expected = merged(
            [b for b in buckets if b.key.day >= since.date()], looked_at, year_zone(program)
        )
        async with engine.connect() as conn:
            found = await common.buckets_since(conn, {customer: looked_at}, year_zone(program))
        got, want = sorted(found[customer], key=_order), sorted(expected, key=_order)
        assert [_brief(b) for b in got] == [_brief(b) for b in want], (n, looked_at)


def _activity(row: dict[str, object]) -> QualifyingActivity:
    return QualifyingActivity(
        activity_id=str(row["activity_id"]),
        customer_id=str(row["customer_id"]),
        amount=Decimal(str(row["amount"])),
        occurred_at=row["occurred_at"],  # type: ignore[arg-type]
        attributed_at=row.get("attributed_at"),  # type: ignore[arg-type]
        visits=int(row["visits"]),  # type: ignore[call-overload]
    )


def _at(picks: random.Random, rows: list[dict[str, object]], program: Program) -> datetime:
    """An activity's instant, a minute either side, or a window after it."""
    near = picks.choice(rows)["occurred_at"]
    assert isinstance(near, datetime)
    windows = picks.choice([0, 0, 1]) * program.qualifying_window_days
    return near + timedelta(days=windows, minutes=picks.choice([-1, 0, 1]))


def _brief(bucket: ActivityBucket) -> tuple[object, ...]:
    return (
        bucket.key.day.isoformat(),
        bucket.key.spent_day.isoformat(),
        str(bucket.amount.normalize()),
        bucket.visits,
        bucket.first_at.isoformat(),
        bucket.last_at.isoformat(),
        bucket.first_spent_at.isoformat(),
        bucket.last_spent_at.isoformat(),
    )


def _order(bucket: ActivityBucket) -> tuple[object, ...]:
    return (bucket.key, bucket.first_at, bucket.last_at)
