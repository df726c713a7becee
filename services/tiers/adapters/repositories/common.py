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
    )


_LOCK_CUSTOMERS = sa.text(
    "SELECT customer_id, tier, since, review_at, enrolled_at FROM customers "
    "WHERE customer_id = ANY(CAST(:ids AS text[])) ORDER BY customer_id FOR UPDATE"
)

_ACTIVITIES_SINCE = sa.text(
    "SELECT a.activity_id, a.customer_id, a.amount, a.occurred_at, a.attributed_at "
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
