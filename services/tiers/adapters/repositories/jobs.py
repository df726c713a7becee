"""What the review and warning jobs read and write, a chunk of customers at a time."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tiers import ports
from services.tiers.adapters.repositories import common
from services.tiers.domain.buckets import ActivityBucket, BucketKey, Window
from services.tiers.domain.model import (
    CustomerTier,
    DowngradeWarning,
    QualifyingActivity,
    TierChange,
)
from services.tiers.ports import DueReferral


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

    async def buckets_since(
        self, windows: Mapping[str, Window], year_zone: str | None
    ) -> dict[str, list[ActivityBucket]]:
        return await common.buckets_since(self._conn, windows, year_zone)

    async def bucket_activities(
        self, keys: Sequence[BucketKey]
    ) -> dict[str, list[QualifyingActivity]]:
        return await common.bucket_activities(self._conn, keys)

    async def save_customers(self, customers: Sequence[CustomerTier]) -> None:
        await common.save_customers(self._conn, customers)

    async def append_history(self, changes: Sequence[TierChange]) -> None:
        await common.append_history(self._conn, changes)

    async def due_referrals(
        self, as_of: datetime, window_days: int, *, after: str, limit: int
    ) -> dict[str, str]:
        rows = await self._conn.execute(
            _DUE_REFERRALS,
            {"bought_by": as_of - timedelta(days=window_days), "after": after, "limit": limit},
        )
        return {row.referred_id: row.referrer_id for row in rows}

    async def lock_referrals(
        self, referred_ids: Collection[str], as_of: datetime, window_days: int
    ) -> list[DueReferral]:
        if not referred_ids:
            return []
        rows = await self._conn.execute(
            _LOCK_REFERRALS,
            {
                "ids": sorted(referred_ids),
                "bought_by": as_of - timedelta(days=window_days),
                "window": timedelta(days=window_days),
            },
        )
        return [
            DueReferral(
                referred_id=row.referred_id,
                referrer_id=row.referrer_id,
                first_purchase_at=row.first_purchase_at,
                purchase_total=row.total,
                refunded_in_window=row.refunded,
            )
            for row in rows
        ]

    async def decide_referrals(
        self, qualified: Collection[str], disqualified: Collection[str], at: datetime
    ) -> None:
        if not qualified and not disqualified:
            return
        ordered = sorted(
            [(r, "qualified") for r in qualified] + [(r, "disqualified") for r in disqualified]
        )
        await self._conn.execute(
            _DECIDE_REFERRALS,
            {"ids": [r for r, _ in ordered], "statuses": [s for _, s in ordered], "at": at},
        )

    async def lock_customers(self, customer_ids: Collection[str]) -> dict[str, CustomerTier]:
        return await common.lock_customers(self._conn, customer_ids)

    async def record_activities(self, activities: Sequence[QualifyingActivity]) -> set[str]:
        return await common.record_activities(self._conn, activities)


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

# On the partial index of pending referrals with a first purchase: a run reads only those.
_DUE_REFERRALS = sa.text(
    "SELECT referred_id, referrer_id FROM referrals "
    "WHERE status = 'pending' AND first_purchase_at IS NOT NULL "
    "AND first_purchase_at <= :bought_by AND referred_id > :after "
    "ORDER BY referred_id LIMIT :limit"
)

# The refunds of the first purchase made by the window's end (the refunds name it).
_LOCK_REFERRALS = sa.text(
    "SELECT r.referred_id, r.referrer_id, r.first_purchase_at, p.amount AS total, "
    "COALESCE((SELECT -sum(f.amount) FROM qualifying_activity AS f "
    "WHERE f.refunded_activity_id = r.first_purchase_id "
    "AND f.occurred_at <= r.first_purchase_at + CAST(:window AS interval)), 0) AS refunded "
    "FROM referrals AS r JOIN qualifying_activity AS p ON p.activity_id = r.first_purchase_id "
    "WHERE r.referred_id = ANY(CAST(:ids AS text[])) AND r.status = 'pending' "
    "AND r.first_purchase_at <= :bought_by "
    "ORDER BY r.referred_id FOR UPDATE OF r"
)

_DECIDE_REFERRALS = sa.text(
    "UPDATE referrals AS r SET status = v.status, decided_at = :at "
    "FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[])) AS v(referred_id, status) "
    "WHERE r.referred_id = v.referred_id"
)
