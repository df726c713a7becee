"""The statements more than one repository runs, on the caller's connection and transaction.

Set-based: arrays are bound whole and unnested by PostgreSQL, so a statement's text, and its
prepared plan, stays the same whatever the number of rows."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tiers.domain.buckets import ActivityBucket, BucketKey, Window
from services.tiers.domain.model import CustomerTier, QualifyingActivity, TierChange


async def lock_customers(
    conn: AsyncConnection, customer_ids: Collection[str]
) -> dict[str, CustomerTier]:
    """The known ones of these customers, locked until the transaction ends, in customer_id
    order."""
    if not customer_ids:
        return {}
    rows = await conn.execute(_LOCK_CUSTOMERS, {"ids": list(customer_ids)})
    return {row.customer_id: customer_of(row) for row in rows}


async def buckets_since(
    conn: AsyncConnection, windows: Mapping[str, Window], year_zone: str | None
) -> dict[str, list[ActivityBucket]]:
    """`domain.buckets.merged` for each customer's window, in one statement: the buckets a cut
    divides (all of them when activity came after the checkpoints' start) one by one, the
    others summed per stretch between two cuts, so a member costs a few rows."""
    if not windows:
        return {}
    cut_ids = [c for c, w in windows.items() for _ in w.cuts]
    rows = await conn.execute(
        _BUCKETS_SINCE,
        {
            "ids": list(windows),
            "sinces": [w.since for w in windows.values()],
            "lates": [w.checkpoints_after for w in windows.values()],
            "cut_ids": cut_ids,
            "cuts": [cut for w in windows.values() for cut in w.cuts],
            "zone": year_zone,
        },
    )
    found: dict[str, list[ActivityBucket]] = {customer_id: [] for customer_id in windows}
    for row in rows:
        found[row.customer_id].append(
            ActivityBucket(
                key=BucketKey(row.customer_id, row.day, row.spent_day),
                amount=row.amount,
                visits=row.visits,
                referrals=row.referrals,
                first_at=row.first_at,
                last_at=row.last_at,
                first_spent_at=row.first_spent_at,
                last_spent_at=row.last_spent_at,
            )
        )
    return found


async def bucket_activities(
    conn: AsyncConnection, keys: Sequence[BucketKey]
) -> dict[str, list[QualifyingActivity]]:
    if not keys:
        return {}
    ordered = sorted(set(keys))
    rows = await conn.execute(
        _BUCKET_ACTIVITIES,
        {
            "ids": [k.customer_id for k in ordered],
            "days": [k.day for k in ordered],
            "spent_days": [k.spent_day for k in ordered],
        },
    )
    found: dict[str, list[QualifyingActivity]] = {}
    for row in rows:
        found.setdefault(row.customer_id, []).append(activity_of(row))
    return found


async def record_activities(
    conn: AsyncConnection, activities: Sequence[QualifyingActivity]
) -> set[str]:
    """Records each activity unless already recorded (in activity_id order, so concurrent
    writers wait on each other in one order); the ids that were new. A new purchase of a
    referred member earlier than the first one their pending referral knows becomes it."""
    if not activities:
        return set()
    ordered = sorted(activities, key=lambda a: a.activity_id)
    result = await conn.execute(
        _RECORD_ACTIVITIES,
        {
            "ids": [a.activity_id for a in ordered],
            "customers": [a.customer_id for a in ordered],
            "amounts": [a.amount for a in ordered],
            "occurred": [a.occurred_at for a in ordered],
            "attributed": [a.attributed_at for a in ordered],
            "visits": [a.visits for a in ordered],
            "referrals": [a.referrals for a in ordered],
            "refunds": [a.refund_of for a in ordered],
            "tiers": [a.tier for a in ordered],
        },
    )
    return set(result.scalars())


async def save_customers(conn: AsyncConnection, customers: Sequence[CustomerTier]) -> None:
    if not customers:
        return
    await conn.execute(
        _SAVE_CUSTOMERS,
        {
            "ids": [c.customer_id for c in customers],
            "tiers": [c.tier for c in customers],
            "sinces": [c.since for c in customers],
            "reviews": [c.review_at for c in customers],
            "enrolled": [c.enrolled_at for c in customers],
        },
    )


async def append_history(conn: AsyncConnection, changes: Sequence[TierChange]) -> None:
    if not changes:
        return
    await conn.execute(
        _APPEND_HISTORY,
        {
            "customers": [c.customer_id for c in changes],
            "froms": [c.from_tier for c in changes],
            "tos": [c.to_tier for c in changes],
            "directions": [c.direction.value for c in changes],
            "reasons": [c.reason for c in changes],
            "effective": [c.effective_at for c in changes],
            "reviews": [c.review_at for c in changes],
            "actors": [c.actor for c in changes],
        },
    )


def customer_of(row: sa.Row[tuple[object, ...]]) -> CustomerTier:
    return CustomerTier(
        customer_id=row.customer_id,
        tier=row.tier,
        since=row.since,
        review_at=row.review_at,
        enrolled_at=row.enrolled_at,
    )


def activity_of(row: sa.Row[tuple[object, ...]]) -> QualifyingActivity:
    return QualifyingActivity(
        activity_id=row.activity_id,
        customer_id=row.customer_id,
        amount=row.amount,
        occurred_at=row.occurred_at,
        attributed_at=row.attributed_at,
        visits=row.visits,
        referrals=row.referrals,
        refund_of=row.refunded_activity_id,
        tier=row.tier,
    )


_LOCK_CUSTOMERS = sa.text(
    "SELECT customer_id, tier, since, review_at, enrolled_at FROM customers "
    "WHERE customer_id = ANY(CAST(:ids AS text[])) ORDER BY customer_id FOR UPDATE"
)


def _year(instant: str) -> str:
    """The calendar year of an instant in the program's zone (0 under the rolling basis)."""
    return (
        f"CASE WHEN CAST(:zone AS text) IS NULL THEN 0 "
        f"ELSE extract(year FROM timezone(CAST(:zone AS text), {instant})) END"
    )


# A bucket row with its member's since, cuts and lateness: the stretch between two cuts it
# starts in, its year, and whether it must come alone (`domain.buckets.merged`).
# width_bucket(x - 1 µs, cuts) counts the cuts before x: a bucket whose first and last
# instants count as many lies between two cuts.
_CLASSIFIED = (
    "width_bucket(first_at - interval '1 microsecond', cuts) AS first_n, "
    f"{_year('first_spent_at')} AS first_year, "
    "late OR first_at < since "
    "OR width_bucket(first_at - interval '1 microsecond', cuts) "
    "<> width_bucket(last_at - interval '1 microsecond', cuts) "
    f"OR {_year('first_spent_at')} <> {_year('last_spent_at')} AS alone"
)
_ROW = (
    "customer_id, day, spent_day, amount, visits, referrals, first_at, last_at, "
    "first_spent_at, last_spent_at"
)

# `domain.buckets.merged` for many members in one statement, on the primary keys: each
# member's month buckets from their `since` on; a month no cut divides taken whole, the day
# buckets of the others; then what may be summed, summed per stretch between two cuts.
# OFFSET 0 keeps each lateral read on its index.
_BUCKETS_SINCE = sa.text(
    "WITH w AS (SELECT * FROM unnest("  # noqa: S608 - fixed fragments
    "CAST(:ids AS text[]), CAST(:sinces AS timestamptz[]), "
    "CAST(:lates AS timestamptz[])) AS w(customer_id, since, late_after)), "
    "c AS (SELECT customer_id, array_agg(cut ORDER BY cut) AS cuts "
    "FROM unnest(CAST(:cut_ids AS text[]), CAST(:cuts AS timestamptz[])) AS c(customer_id, cut) "
    "GROUP BY customer_id), "
    # Per member: their cuts, and whether activity came after the checkpoints' start.
    "m AS (SELECT w.*, COALESCE(c.cuts, '{}') AS cuts, EXISTS (SELECT 1 "
    "FROM qualifying_months AS l WHERE l.customer_id = w.customer_id "
    "AND l.day >= CAST(date_trunc('month', timezone('UTC', w.late_after)) AS date) "
    "AND l.last_at > w.late_after) AS late FROM w LEFT JOIN c ON c.customer_id = w.customer_id), "
    "mo AS (SELECT b.*, m.since, m.late, m.cuts FROM m CROSS JOIN LATERAL "
    "(SELECT * FROM qualifying_months AS b WHERE b.customer_id = m.customer_id "
    "AND b.day >= CAST(date_trunc('month', timezone('UTC', m.since)) AS date) "
    "AND b.last_at >= m.since OFFSET 0) AS b), "
    f"mc AS (SELECT *, {_CLASSIFIED} FROM mo), "
    "da AS (SELECT b.*, mc.since, mc.late, mc.cuts FROM mc CROSS JOIN LATERAL "
    "(SELECT * FROM qualifying_buckets AS b WHERE b.customer_id = mc.customer_id "
    "AND b.day >= mc.day AND b.day < CAST(mc.day + interval '1 month' AS date) "
    "AND b.spent_day >= mc.spent_day "
    "AND b.spent_day < CAST(mc.spent_day + interval '1 month' AS date) "
    "AND b.last_at >= mc.since OFFSET 0) AS b WHERE mc.alone), "
    f"r AS (SELECT {_ROW}, first_n, first_year, alone FROM mc WHERE NOT alone "
    f"UNION ALL SELECT {_ROW}, {_CLASSIFIED} FROM da) "
    f"SELECT {_ROW} FROM r WHERE alone "
    "UNION ALL "
    "SELECT customer_id, CAST(timezone('UTC', min(first_at)) AS date), "
    "CAST(timezone('UTC', min(first_spent_at)) AS date), sum(amount), sum(visits), "
    "sum(referrals), min(first_at), max(last_at), min(first_spent_at), max(last_spent_at) "
    "FROM r WHERE NOT alone GROUP BY customer_id, first_n, first_year"
)

# On ix_qualifying_activity_customer_occurred: each bucket's day of the member's activity.
_BUCKET_ACTIVITIES = sa.text(
    "SELECT a.activity_id, a.customer_id, a.amount, a.occurred_at, a.attributed_at, "
    "a.visits, a.referrals, a.refunded_activity_id, a.tier "
    "FROM unnest(CAST(:ids AS text[]), CAST(:days AS date[]), CAST(:spent_days AS date[])) "
    "AS k(customer_id, day, spent_day) "
    "JOIN qualifying_activity AS a ON a.customer_id = k.customer_id "
    "AND a.occurred_at >= timezone('UTC', CAST(k.day AS timestamp)) "
    "AND a.occurred_at < timezone('UTC', CAST(k.day + 1 AS timestamp)) "
    "AND CAST(timezone('UTC', COALESCE(a.attributed_at, a.occurred_at)) AS date) = k.spent_day "
    "ORDER BY a.occurred_at, a.id"
)

_SAVE_CUSTOMERS = sa.text(
    "UPDATE customers SET tier = v.tier, since = v.since, review_at = v.review_at, "
    "enrolled_at = v.enrolled_at "
    "FROM unnest(CAST(:ids AS text[]), CAST(:tiers AS text[]), "
    "CAST(:sinces AS timestamptz[]), CAST(:reviews AS timestamptz[]), "
    "CAST(:enrolled AS timestamptz[])) AS v(customer_id, tier, since, review_at, enrolled_at) "
    "WHERE customers.customer_id = v.customer_id"
)

# WITH ORDINALITY and ORDER BY: the history's ids follow the order the changes happened in.
_APPEND_HISTORY = sa.text(
    "INSERT INTO tier_history "
    "(customer_id, from_tier, to_tier, direction, reason, effective_at, review_at, actor) "
    "SELECT customer_id, from_tier, to_tier, direction, reason, effective_at, review_at, actor "
    "FROM unnest(CAST(:customers AS text[]), CAST(:froms AS text[]), CAST(:tos AS text[]), "
    "CAST(:directions AS text[]), CAST(:reasons AS text[]), CAST(:effective AS timestamptz[]), "
    "CAST(:reviews AS timestamptz[]), CAST(:actors AS text[])) "
    "WITH ORDINALITY AS c(customer_id, from_tier, to_tier, direction, reason, effective_at, "
    "review_at, actor, n) "
    "ORDER BY n"
)

# Follows a `new AS (INSERT INTO qualifying_activity ... RETURNING activity_id, customer_id,
# occurred_at)`: notes the first purchase of referred members among the new activity.
NOTE_FIRST_PURCHASES = (
    ", first AS (SELECT DISTINCT ON (customer_id) customer_id, activity_id, occurred_at "
    "FROM new WHERE activity_id LIKE 'purchase:%' "
    "ORDER BY customer_id, occurred_at, activity_id), "
    "noted AS (UPDATE referrals AS r SET first_purchase_id = f.activity_id, "
    "first_purchase_at = f.occurred_at FROM first AS f "
    "WHERE r.referred_id = f.customer_id AND r.status = 'pending' "
    "AND (r.first_purchase_at IS NULL "
    "OR (f.occurred_at, f.activity_id) < (r.first_purchase_at, r.first_purchase_id))) "
    "SELECT activity_id FROM new"
)

# One statement: the new activity, and the first purchase of the referred members among its
# buyers whose referral is still pending (a purchase reported late may come before the one
# known). `new` is read once; the UPDATE sees the referrals as they were before it.
_RECORD_ACTIVITIES = sa.text(
    "WITH new AS (INSERT INTO qualifying_activity "  # noqa: S608 - fixed fragments
    "(activity_id, customer_id, amount, occurred_at, attributed_at, visits, referrals, "
    "refunded_activity_id, tier) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:customers AS text[]), "
    "CAST(:amounts AS numeric[]), CAST(:occurred AS timestamptz[]), "
    "CAST(:attributed AS timestamptz[]), CAST(:visits AS smallint[]), "
    "CAST(:referrals AS smallint[]), CAST(:refunds AS text[]), CAST(:tiers AS text[])) "
    "ON CONFLICT (activity_id) DO NOTHING "
    "RETURNING activity_id, customer_id, occurred_at) " + NOTE_FIRST_PURCHASES
)
