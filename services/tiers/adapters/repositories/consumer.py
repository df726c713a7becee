"""What the consumer's batch handler (`handlers.apply_batch`) reads and writes: set-based, each
method takes or returns the rows of a whole batch and costs one statement."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tiers import ports
from services.tiers.adapters.repositories import common
from services.tiers.domain.model import CustomerTier, QualifyingActivity, TierChange


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
        return await common.activities_since(self._conn, since)

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

_RECORD_ACTIVITIES = sa.text(
    "INSERT INTO qualifying_activity "
    "(activity_id, customer_id, amount, occurred_at, attributed_at) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:customers AS text[]), "
    "CAST(:amounts AS numeric[]), CAST(:occurred AS timestamptz[]), "
    "CAST(:attributed AS timestamptz[])) "
    "ON CONFLICT (activity_id) DO NOTHING RETURNING activity_id"
)

_PURCHASE_TIMES = sa.text(
    "SELECT activity_id, occurred_at FROM qualifying_activity "
    "WHERE activity_id = ANY(CAST(:ids AS text[]))"
)
