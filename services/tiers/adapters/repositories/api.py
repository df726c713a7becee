"""What the HTTP use cases read (a customer's standing and history) and write (a staff
override)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tiers import ports
from services.tiers.adapters.repositories import common
from services.tiers.adapters.tables import customers, tier_history
from services.tiers.domain.buckets import ActivityBucket, BucketKey, Window
from services.tiers.domain.model import CustomerTier, Direction, QualifyingActivity, TierChange


def api_repository(conn: AsyncConnection) -> ports.ApiRepository:
    return SqlApiRepository(conn)


class SqlApiRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def customer(self, customer_id: str) -> CustomerTier | None:
        row = (
            await self._conn.execute(
                sa.select(customers).where(customers.c.customer_id == customer_id)
            )
        ).first()
        return common.customer_of(row) if row else None

    async def buckets_since(
        self, windows: Mapping[str, Window], year_zone: str | None
    ) -> dict[str, list[ActivityBucket]]:
        return await common.buckets_since(self._conn, windows, year_zone)

    async def bucket_activities(
        self, keys: Sequence[BucketKey]
    ) -> dict[str, list[QualifyingActivity]]:
        return await common.bucket_activities(self._conn, keys)

    async def history(self, customer_id: str) -> list[TierChange]:
        rows = await self._conn.execute(
            sa.select(tier_history)
            .where(tier_history.c.customer_id == customer_id)
            .order_by(tier_history.c.id.desc())
        )
        return [_change_of(row) for row in rows]

    async def last_change(self, customer_id: str) -> TierChange | None:
        row = (
            await self._conn.execute(
                sa.select(tier_history)
                .where(tier_history.c.customer_id == customer_id)
                .order_by(tier_history.c.id.desc())
                .limit(1)
            )
        ).first()
        return _change_of(row) if row else None

    async def lock_customers(self, customer_ids: Collection[str]) -> dict[str, CustomerTier]:
        return await common.lock_customers(self._conn, customer_ids)

    async def save_customers(self, customers: Sequence[CustomerTier]) -> None:
        await common.save_customers(self._conn, customers)

    async def append_history(self, changes: Sequence[TierChange]) -> None:
        await common.append_history(self._conn, changes)


def _change_of(row: sa.Row[tuple[object, ...]]) -> TierChange:
    return TierChange(
        customer_id=row.customer_id,
        from_tier=row.from_tier,
        to_tier=row.to_tier,
        direction=Direction(row.direction),
        reason=row.reason,
        effective_at=row.effective_at,
        review_at=row.review_at,
        actor=row.actor,
    )
