"""The tier repository: the domain's view of the tiers database.

The consumer's side is set-based: each method takes or returns the rows of a whole batch and
costs one statement, whatever the batch's size. Arrays are bound whole and unnested by
PostgreSQL, so a statement's text, and its prepared plan, stays the same for every batch.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tiers.adapters.tables import customers, qualifying_activity, tier_history
from services.tiers.domain.model import (
    CustomerTier,
    Direction,
    DowngradeWarning,
    QualifyingActivity,
    TierChange,
)


class TierRepository(Protocol):
    async def add_customers(self, customers: Sequence[CustomerTier]) -> None:
        """Adds each customer unless already known (a known one is left as it is)."""
        ...

    async def lock_customers(self, customer_ids: Collection[str]) -> dict[str, CustomerTier]:
        """The known ones of these customers, locked until the transaction ends, so one
        decision sees all their spend. Locked in customer_id order: two instances locking
        overlapping sets then never wait on each other in a cycle."""
        ...

    async def record_activities(self, activities: Sequence[QualifyingActivity]) -> set[str]:
        """Records each purchase or refund unless already recorded; the activity ids that
        were new."""
        ...

    async def activities_since(
        self, since: Mapping[str, datetime]
    ) -> dict[str, list[QualifyingActivity]]:
        """For each customer, their activity that occurred at or after their instant."""
        ...

    async def purchase_times(self, activity_ids: Collection[str]) -> dict[str, datetime]:
        """When each of these recorded purchases occurred (unknown ones are left out)."""
        ...

    async def save_customers(self, customers: Sequence[CustomerTier]) -> None:
        """Stores these (known, locked) customers' tier, since, review date and enrolment."""
        ...

    async def append_history(self, changes: Sequence[TierChange]) -> None:
        """Appends the changes, in order, to the customers' tier history."""
        ...


class TierReviews(Protocol):
    """What the review and warning jobs need, a chunk of customers at a time."""

    async def lock_due_for_review(
        self, as_of: datetime, *, after: str, limit: int
    ) -> list[CustomerTier]:
        """Up to `limit` customers after `after` (by customer_id) whose review is due by
        `as_of`, locked like `TierRepository.lock_customers`, in customer_id order."""
        ...

    async def lock_due_for_warning(
        self, as_of: datetime, warn_until: datetime, *, after: str, limit: int
    ) -> list[CustomerTier]:
        """Up to `limit` customers after `after` whose review falls in (as_of, warn_until]
        and who were not warned about that review yet, locked, in customer_id order."""
        ...

    async def record_warnings(self, warnings: Sequence[DowngradeWarning], at: datetime) -> None:
        """Remembers these warnings as given (once per customer and review)."""
        ...

    async def activities_since(
        self, since: Mapping[str, datetime]
    ) -> dict[str, list[QualifyingActivity]]: ...

    async def save_customers(self, customers: Sequence[CustomerTier]) -> None: ...

    async def append_history(self, changes: Sequence[TierChange]) -> None: ...


class SqlTierRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    # -- the consumer's batch --------------------------------------------------------------

    async def add_customers(self, customers: Sequence[CustomerTier]) -> None:
        if not customers:
            return
        # In customer_id order, like the lock: concurrent inserts of the same new customers
        # then wait on each other in one order.
        ordered = sorted(customers, key=lambda c: c.customer_id)
        await self._conn.execute(
            _ADD_CUSTOMERS,
            {
                "ids": [c.customer_id for c in ordered],
                "tiers": [c.tier for c in ordered],
                "sinces": [c.since for c in ordered],
                "reviews": [c.review_at for c in ordered],
                "enrolled": [c.enrolled_at for c in ordered],
            },
        )

    async def lock_customers(self, customer_ids: Collection[str]) -> dict[str, CustomerTier]:
        if not customer_ids:
            return {}
        rows = await self._conn.execute(_LOCK_CUSTOMERS, {"ids": list(customer_ids)})
        return {row.customer_id: _customer(row) for row in rows}

    async def record_activities(self, activities: Sequence[QualifyingActivity]) -> set[str]:
        if not activities:
            return set()
        ordered = sorted(activities, key=lambda a: a.activity_id)
        result = await self._conn.execute(
            _RECORD_ACTIVITIES,
            {
                "ids": [a.activity_id for a in ordered],
                "customers": [a.customer_id for a in ordered],
                "amounts": [a.amount for a in ordered],
                "occurred": [a.occurred_at for a in ordered],
                "attributed": [a.attributed_at for a in ordered],
            },
        )
        return set(result.scalars())

    async def activities_since(
        self, since: Mapping[str, datetime]
    ) -> dict[str, list[QualifyingActivity]]:
        if not since:
            return {}
        rows = await self._conn.execute(
            _ACTIVITIES_SINCE, {"ids": list(since), "sinces": list(since.values())}
        )
        found: dict[str, list[QualifyingActivity]] = {customer_id: [] for customer_id in since}
        for row in rows:
            found[row.customer_id].append(_activity(row))
        return found

    async def purchase_times(self, activity_ids: Collection[str]) -> dict[str, datetime]:
        if not activity_ids:
            return {}
        rows = await self._conn.execute(_PURCHASE_TIMES, {"ids": sorted(activity_ids)})
        return {row.activity_id: row.occurred_at for row in rows}

    async def save_customers(self, customers: Sequence[CustomerTier]) -> None:
        if not customers:
            return
        await self._conn.execute(
            _SAVE_CUSTOMERS,
            {
                "ids": [c.customer_id for c in customers],
                "tiers": [c.tier for c in customers],
                "sinces": [c.since for c in customers],
                "reviews": [c.review_at for c in customers],
                "enrolled": [c.enrolled_at for c in customers],
            },
        )

    async def append_history(self, changes: Sequence[TierChange]) -> None:
        if not changes:
            return
        await self._conn.execute(
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

    # -- the jobs' chunks ------------------------------------------------------------------

    async def lock_due_for_review(
        self, as_of: datetime, *, after: str, limit: int
    ) -> list[CustomerTier]:
        rows = await self._conn.execute(
            _LOCK_DUE_FOR_REVIEW, {"as_of": as_of, "after": after, "limit": limit}
        )
        return [_customer(row) for row in rows]

    async def lock_due_for_warning(
        self, as_of: datetime, warn_until: datetime, *, after: str, limit: int
    ) -> list[CustomerTier]:
        rows = await self._conn.execute(
            _LOCK_DUE_FOR_WARNING,
            {"as_of": as_of, "until": warn_until, "after": after, "limit": limit},
        )
        return [_customer(row) for row in rows]

    async def record_warnings(self, warnings: Sequence[DowngradeWarning], at: datetime) -> None:
        if not warnings:
            return
        await self._conn.execute(
            _RECORD_WARNINGS,
            {
                "ids": [w.customer_id for w in warnings],
                "reviews": [w.review_at for w in warnings],
                "at": at,
            },
        )

    # -- the API's reads -------------------------------------------------------------------

    async def customer(self, customer_id: str) -> CustomerTier | None:
        row = (
            await self._conn.execute(
                sa.select(customers).where(customers.c.customer_id == customer_id)
            )
        ).first()
        return _customer(row) if row else None

    async def activities(self, customer_id: str, since: datetime) -> list[QualifyingActivity]:
        rows = await self._conn.execute(
            sa.select(qualifying_activity)
            .where(
                qualifying_activity.c.customer_id == customer_id,
                qualifying_activity.c.occurred_at >= since,
            )
            .order_by(qualifying_activity.c.occurred_at, qualifying_activity.c.id)
        )
        return [_activity(row) for row in rows]

    async def history(self, customer_id: str) -> list[TierChange]:
        """The customer's tier changes, newest first."""
        rows = await self._conn.execute(
            sa.select(tier_history)
            .where(tier_history.c.customer_id == customer_id)
            .order_by(tier_history.c.id.desc())
        )
        return [
            TierChange(
                customer_id=row.customer_id,
                from_tier=row.from_tier,
                to_tier=row.to_tier,
                direction=Direction(row.direction),
                reason=row.reason,
                effective_at=row.effective_at,
                review_at=row.review_at,
                actor=row.actor,
            )
            for row in rows
        ]


_ADD_CUSTOMERS = sa.text(
    "INSERT INTO customers (customer_id, tier, since, review_at, enrolled_at) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:tiers AS text[]), "
    "CAST(:sinces AS timestamptz[]), CAST(:reviews AS timestamptz[]), "
    "CAST(:enrolled AS timestamptz[])) "
    "ON CONFLICT (customer_id) DO NOTHING"
)

_LOCK_CUSTOMERS = sa.text(
    "SELECT customer_id, tier, since, review_at, enrolled_at FROM customers "
    "WHERE customer_id = ANY(CAST(:ids AS text[])) ORDER BY customer_id FOR UPDATE"
)

_RECORD_ACTIVITIES = sa.text(
    "INSERT INTO qualifying_activity "
    "(activity_id, customer_id, amount, occurred_at, attributed_at) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:customers AS text[]), "
    "CAST(:amounts AS numeric[]), CAST(:occurred AS timestamptz[]), "
    "CAST(:attributed AS timestamptz[])) "
    "ON CONFLICT (activity_id) DO NOTHING RETURNING activity_id"
)

_ACTIVITIES_SINCE = sa.text(
    "SELECT a.activity_id, a.customer_id, a.amount, a.occurred_at, a.attributed_at "
    "FROM unnest(CAST(:ids AS text[]), CAST(:sinces AS timestamptz[])) AS w(customer_id, since) "
    "JOIN qualifying_activity AS a "
    "ON a.customer_id = w.customer_id AND a.occurred_at >= w.since "
    "ORDER BY a.occurred_at, a.id"
)

_PURCHASE_TIMES = sa.text(
    "SELECT activity_id, occurred_at FROM qualifying_activity "
    "WHERE activity_id = ANY(CAST(:ids AS text[]))"
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

_LOCK_DUE_FOR_REVIEW = sa.text(
    "SELECT customer_id, tier, since, review_at, enrolled_at FROM customers "
    "WHERE review_at <= :as_of AND customer_id > :after "
    "ORDER BY customer_id LIMIT :limit FOR UPDATE"
)

_LOCK_DUE_FOR_WARNING = sa.text(
    "SELECT c.customer_id, c.tier, c.since, c.review_at, c.enrolled_at FROM customers AS c "
    "WHERE c.review_at > :as_of AND c.review_at <= :until AND c.customer_id > :after "
    "AND NOT EXISTS (SELECT 1 FROM downgrade_warnings AS w "
    "WHERE w.customer_id = c.customer_id AND w.review_at = c.review_at) "
    "ORDER BY c.customer_id LIMIT :limit FOR UPDATE OF c"
)

_RECORD_WARNINGS = sa.text(
    "INSERT INTO downgrade_warnings (customer_id, review_at, warned_at) "
    "SELECT customer_id, review_at, :at "
    "FROM unnest(CAST(:ids AS text[]), CAST(:reviews AS timestamptz[])) "
    "AS w(customer_id, review_at) "
    "ON CONFLICT (customer_id, review_at) DO NOTHING"
)


def _customer(row: sa.Row[tuple[object, ...]]) -> CustomerTier:
    return CustomerTier(
        customer_id=row.customer_id,
        tier=row.tier,
        since=row.since,
        review_at=row.review_at,
        enrolled_at=row.enrolled_at,
    )


def _activity(row: sa.Row[tuple[object, ...]]) -> QualifyingActivity:
    return QualifyingActivity(
        activity_id=row.activity_id,
        customer_id=row.customer_id,
        amount=row.amount,
        occurred_at=row.occurred_at,
        attributed_at=row.attributed_at,
    )
