"""What the review and warning jobs read and write, a chunk of customers at a time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tiers import ports
from services.tiers.adapters.repositories import common
from services.tiers.domain.model import (
    CustomerTier,
    DowngradeWarning,
    QualifyingActivity,
    TierChange,
)


def job_repository(conn: AsyncConnection) -> ports.JobRepository:
    return SqlJobRepository(conn)


class SqlJobRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def lock_due_for_review(
        self, as_of: datetime, *, after: str, limit: int
    ) -> list[CustomerTier]:
        rows = await self._conn.execute(
            _LOCK_DUE_FOR_REVIEW, {"as_of": as_of, "after": after, "limit": limit}
        )
        return [common.customer_of(row) for row in rows]

    async def lock_due_for_warning(
        self, as_of: datetime, warn_until: datetime, *, after: str, limit: int
    ) -> list[CustomerTier]:
        rows = await self._conn.execute(
            _LOCK_DUE_FOR_WARNING,
            {"as_of": as_of, "until": warn_until, "after": after, "limit": limit},
        )
        return [common.customer_of(row) for row in rows]

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

    async def activities_since(
        self, since: Mapping[str, datetime]
    ) -> dict[str, list[QualifyingActivity]]:
        return await common.activities_since(self._conn, since)

    async def save_customers(self, customers: Sequence[CustomerTier]) -> None:
        await common.save_customers(self._conn, customers)

    async def append_history(self, changes: Sequence[TierChange]) -> None:
        await common.append_history(self._conn, changes)


_LOCK_DUE_FOR_REVIEW = sa.text(
    "SELECT customer_id, tier, since, review_at, enrolled_at FROM customers "
    "WHERE review_at <= :as_of AND customer_id > :after "
    "ORDER BY customer_id LIMIT :limit FOR UPDATE"
)

# Both sides bounded by the chunk's start: PostgreSQL merges the customers with their
# warnings in customer order, and without the bound on `w` it read every warning from the
# first for every chunk (a run over a member base quadratic in it).
_LOCK_DUE_FOR_WARNING = sa.text(
    "SELECT c.customer_id, c.tier, c.since, c.review_at, c.enrolled_at FROM customers AS c "
    "WHERE c.review_at > :as_of AND c.review_at <= :until AND c.customer_id > :after "
    "AND NOT EXISTS (SELECT 1 FROM downgrade_warnings AS w "
    "WHERE w.customer_id = c.customer_id AND w.review_at = c.review_at "
    "AND w.customer_id > :after) "
    "ORDER BY c.customer_id LIMIT :limit FOR UPDATE OF c"
)

_RECORD_WARNINGS = sa.text(
    "INSERT INTO downgrade_warnings (customer_id, review_at, warned_at) "
    "SELECT customer_id, review_at, :at "
    "FROM unnest(CAST(:ids AS text[]), CAST(:reviews AS timestamptz[])) "
    "AS w(customer_id, review_at) "
    "ON CONFLICT (customer_id, review_at) DO NOTHING"
)
