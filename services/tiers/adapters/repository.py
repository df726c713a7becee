"""The tier repository: the domain's view of the tiers database."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tiers.adapters.tables import customers, qualifying_activity, tier_history
from services.tiers.domain.model import CustomerTier, QualifyingActivity, TierChange
from shared.db import insert_if_absent


class TierRepository(Protocol):
    async def enrol(self, customer: CustomerTier) -> None:
        """Adds the customer; when already known (a purchase came first), keeps their tier
        and only records `enrolled_at`."""
        ...

    async def add_customer(self, customer: CustomerTier) -> bool:
        """Adds the customer unless already known; False when they were."""
        ...

    async def lock_customer(self, customer_id: str) -> CustomerTier | None:
        """The customer, locked until the transaction ends, so one decision sees all spend."""
        ...

    async def record_activity(self, activity: QualifyingActivity) -> bool:
        """False when this purchase or refund was already recorded."""
        ...

    async def activities(self, customer_id: str, since: datetime) -> list[QualifyingActivity]:
        """The customer's activity that occurred at or after `since`."""
        ...

    async def apply_change(self, change: TierChange) -> None:
        """Moves the customer to the new tier and appends the change to their history."""
        ...


class SqlTierRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def enrol(self, customer: CustomerTier) -> None:
        statement = insert(customers).values(
            customer_id=customer.customer_id,
            tier=customer.tier,
            since=customer.since,
            review_at=customer.review_at,
            enrolled_at=customer.enrolled_at,
        )
        await self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=["customer_id"],
                set_={"enrolled_at": statement.excluded.enrolled_at},
                where=customers.c.enrolled_at.is_(None),
            )
        )

    async def add_customer(self, customer: CustomerTier) -> bool:
        return await insert_if_absent(
            self._conn,
            customers,
            dict(
                customer_id=customer.customer_id,
                tier=customer.tier,
                since=customer.since,
                review_at=customer.review_at,
                enrolled_at=customer.enrolled_at,
            ),
        )

    async def lock_customer(self, customer_id: str) -> CustomerTier | None:
        row = (
            await self._conn.execute(
                sa.select(customers).where(customers.c.customer_id == customer_id).with_for_update()
            )
        ).first()
        return _customer(row) if row else None

    async def customer(self, customer_id: str) -> CustomerTier | None:
        row = (
            await self._conn.execute(
                sa.select(customers).where(customers.c.customer_id == customer_id)
            )
        ).first()
        return _customer(row) if row else None

    async def record_activity(self, activity: QualifyingActivity) -> bool:
        return await insert_if_absent(
            self._conn,
            qualifying_activity,
            dict(
                activity_id=activity.activity_id,
                customer_id=activity.customer_id,
                amount=activity.amount,
                occurred_at=activity.occurred_at,
            ),
            key=["activity_id"],
        )

    async def activities(self, customer_id: str, since: datetime) -> list[QualifyingActivity]:
        rows = await self._conn.execute(
            sa.select(qualifying_activity)
            .where(
                qualifying_activity.c.customer_id == customer_id,
                qualifying_activity.c.occurred_at >= since,
            )
            .order_by(qualifying_activity.c.occurred_at, qualifying_activity.c.id)
        )
        return [
            QualifyingActivity(
                activity_id=row.activity_id,
                customer_id=row.customer_id,
                amount=row.amount,
                occurred_at=row.occurred_at,
            )
            for row in rows
        ]

    async def apply_change(self, change: TierChange) -> None:
        await self._conn.execute(
            customers.update()
            .where(customers.c.customer_id == change.customer_id)
            .values(tier=change.to_tier, since=change.effective_at, review_at=change.review_at)
        )
        await self._conn.execute(
            tier_history.insert().values(
                customer_id=change.customer_id,
                from_tier=change.from_tier,
                to_tier=change.to_tier,
                direction=change.direction.value,
                reason=change.reason,
                effective_at=change.effective_at,
            )
        )


def _customer(row: sa.Row[tuple[object, ...]]) -> CustomerTier:
    return CustomerTier(
        customer_id=row.customer_id,
        tier=row.tier,
        since=row.since,
        review_at=row.review_at,
        enrolled_at=row.enrolled_at,
    )
