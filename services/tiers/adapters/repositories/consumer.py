"""What the consumer's batch handler (`handlers.apply_batch`) reads and writes: set-based, each
method takes or returns the rows of a whole batch and costs one statement."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tiers import ports
from services.tiers.adapters.repositories import common
from services.tiers.domain.buckets import ActivityBucket, BucketKey, Window
from services.tiers.domain.model import CustomerTier, QualifyingActivity, TierChange
from services.tiers.ports import RefundedPurchase


def consumer_repository(conn: AsyncConnection) -> ports.ConsumerRepository:
    return SqlConsumerRepository(conn)


class SqlConsumerRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

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
        return await common.lock_customers(self._conn, customer_ids)

    async def record_activities(self, activities: Sequence[QualifyingActivity]) -> set[str]:
        return await common.record_activities(self._conn, activities)

    async def refunds_of(self, purchase_ids: Collection[str]) -> dict[str, RefundedPurchase]:
        if not purchase_ids:
            return {}
        rows = await self._conn.execute(_REFUNDS_OF, {"ids": sorted(purchase_ids)})
        found: dict[str, RefundedPurchase] = {}
        for row in rows:
            known = found.setdefault(row.purchase_id, RefundedPurchase(row.total, {}))
            if row.refund_id is not None:
                known.refunds[row.refund_id] = -row.refund_amount
        return found

    async def add_referrals(self, referred_by: Mapping[str, str]) -> None:
        if not referred_by:
            return
        ordered = sorted(referred_by.items())
        await self._conn.execute(
            _ADD_REFERRALS,
            {"referred": [r for r, _ in ordered], "referrers": [x for _, x in ordered]},
        )

    async def buckets_since(
        self, windows: Mapping[str, Window], year_zone: str | None
    ) -> dict[str, list[ActivityBucket]]:
        return await common.buckets_since(self._conn, windows, year_zone)

    async def bucket_activities(
        self, keys: Sequence[BucketKey]
    ) -> dict[str, list[QualifyingActivity]]:
        return await common.bucket_activities(self._conn, keys)

    async def purchase_times(self, activity_ids: Collection[str]) -> dict[str, datetime]:
        if not activity_ids:
            return {}
        rows = await self._conn.execute(_PURCHASE_TIMES, {"ids": sorted(activity_ids)})
        return {row.activity_id: row.occurred_at for row in rows}

    async def save_customers(self, customers: Sequence[CustomerTier]) -> None:
        await common.save_customers(self._conn, customers)

    async def append_history(self, changes: Sequence[TierChange]) -> None:
        await common.append_history(self._conn, changes)


_ADD_CUSTOMERS = sa.text(
    "INSERT INTO customers (customer_id, tier, since, review_at, enrolled_at) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:tiers AS text[]), "
    "CAST(:sinces AS timestamptz[]), CAST(:reviews AS timestamptz[]), "
    "CAST(:enrolled AS timestamptz[])) "
    "ON CONFLICT (customer_id) DO NOTHING"
)

# A purchase's total with each refund recorded of it (one row per refund; NULLs for none).
_REFUNDS_OF = sa.text(
    "SELECT p.activity_id AS purchase_id, p.amount AS total, r.activity_id AS refund_id, "
    "r.amount AS refund_amount FROM qualifying_activity AS p "
    "LEFT JOIN qualifying_activity AS r ON r.refunded_activity_id = p.activity_id "
    "WHERE p.activity_id = ANY(CAST(:ids AS text[]))"
)

# The referred member's first purchase, if recorded already (the purchases topic may be read
# ahead of the customers topic). A member's referral is the first one named: later profiles
# repeating it, or naming another, change nothing.
_ADD_REFERRALS = sa.text(
    "INSERT INTO referrals (referred_id, referrer_id, first_purchase_id, first_purchase_at, "
    "status) "
    "SELECT v.referred, v.referrer, f.activity_id, f.occurred_at, 'pending' "
    "FROM unnest(CAST(:referred AS text[]), CAST(:referrers AS text[])) AS v(referred, referrer) "
    "LEFT JOIN LATERAL (SELECT q.activity_id, q.occurred_at FROM qualifying_activity AS q "
    "WHERE q.customer_id = v.referred AND q.activity_id LIKE 'purchase:%' "
    "ORDER BY q.occurred_at, q.activity_id LIMIT 1) AS f ON true "
    "WHERE NOT EXISTS (SELECT 1 FROM referrals AS k WHERE k.referred_id = v.referred) "
    "ORDER BY v.referred "
    "ON CONFLICT (referred_id) DO NOTHING"
)

_PURCHASE_TIMES = sa.text(
    "SELECT activity_id, occurred_at FROM qualifying_activity "
    "WHERE activity_id = ANY(CAST(:ids AS text[]))"
)
