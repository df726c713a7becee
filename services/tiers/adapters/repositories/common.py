"""The statements more than one repository runs, on the caller's connection and transaction.

Set-based: arrays are bound whole and unnested by PostgreSQL, so a statement's text, and its
prepared plan, stays the same whatever the number of rows."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

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


async def activities_since(
    conn: AsyncConnection, since: Mapping[str, datetime]
) -> dict[str, list[QualifyingActivity]]:
    if not since:
        return {}
    rows = await conn.execute(
        _ACTIVITIES_SINCE, {"ids": list(since), "sinces": list(since.values())}
    )
    found: dict[str, list[QualifyingActivity]] = {customer_id: [] for customer_id in since}
    for row in rows:
        found[row.customer_id].append(activity_of(row))
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

_ACTIVITIES_SINCE = sa.text(
    "SELECT a.activity_id, a.customer_id, a.amount, a.occurred_at, a.attributed_at, "
    "a.visits, a.referrals, a.refunded_activity_id, a.tier "
    "FROM unnest(CAST(:ids AS text[]), CAST(:sinces AS timestamptz[])) AS w(customer_id, since) "
    "JOIN qualifying_activity AS a "
    "ON a.customer_id = w.customer_id AND a.occurred_at >= w.since "
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
