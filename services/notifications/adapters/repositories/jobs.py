"""What the time-driven jobs read and write: releasing the messages whose wait ended, and the
win-backs of the customers whose purchases lapsed."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifications import ports
from services.notifications.adapters.repositories.common import Reachability, Scheduling
from services.notifications.adapters.tables import deliveries
from services.notifications.domain.model import DeliveryStatus, PurchaseActivity

_MARK_WON_BACK = sa.text(
    "UPDATE purchase_activity SET win_back_for = w.last_purchase_at "
    "FROM unnest(CAST(:customer_ids AS text[]), CAST(:last_purchase_ats AS timestamptz[])) "
    "AS w(customer_id, last_purchase_at) "
    "WHERE purchase_activity.customer_id = w.customer_id"
)


# domain.is_lapsed, written as the partial index ix_purchase_activity_awaiting_win_back
# (migration 0008) is, so that PostgreSQL reads a chunk in the index's order from where the
# last one ended: only the customers not won back since their last purchase.
_LAPSED = sa.text(
    "SELECT p.customer_id, p.last_purchase_at, p.win_back_for FROM purchase_activity AS p "
    "WHERE (p.win_back_for IS NULL OR p.win_back_for < p.last_purchase_at) "
    "AND p.last_purchase_at <= :lapsed_by "
    "AND (p.last_purchase_at, p.customer_id) > "
    "(CAST(:key_at AS timestamptz), CAST(:key_id AS text)) "
    "AND EXISTS (SELECT 1 FROM contacts AS c WHERE c.customer_id = p.customer_id) "
    "ORDER BY p.last_purchase_at, p.customer_id LIMIT :limit FOR UPDATE OF p"
)


class SqlJobsRepository(Reachability, Scheduling):
    """ports.JobsRepository on PostgreSQL."""

    async def release(self, as_of: datetime, *, held: bool) -> int:
        kind = deliveries.c.hold.is_not(None) if held else deliveries.c.hold.is_(None)
        result = await self._conn.execute(
            deliveries.update()
            .where(
                deliveries.c.status == DeliveryStatus.SCHEDULED.value,
                kind,
                *([] if held else [deliveries.c.attempts > 0]),
                deliveries.c.next_attempt_at <= as_of,
                sa.or_(deliveries.c.released_as_of.is_(None), deliveries.c.released_as_of < as_of),
            )
            # created_at is in the past whatever the clock: the dispatcher takes it next round.
            .values(
                next_attempt_at=sa.func.least(
                    deliveries.c.next_attempt_at, deliveries.c.created_at
                ),
                released_as_of=as_of,
                hold=None,
            )
        )
        return result.rowcount

    async def lapsed(
        self,
        as_of: datetime,
        after: timedelta,
        *,
        after_key: tuple[datetime, str],
        limit: int,
    ) -> list[PurchaseActivity]:
        """Only those with a contact: none for an erased customer whose purchases still
        arrive, and one whose profile has not arrived yet is taken once it has."""
        rows = await self._conn.execute(
            _LAPSED,
            {
                "lapsed_by": as_of - after,
                "key_at": after_key[0],
                "key_id": after_key[1],
                "limit": limit,
            },
        )
        return [
            PurchaseActivity(
                customer_id=row.customer_id,
                last_purchase_at=row.last_purchase_at,
                win_back_for=row.win_back_for,
            )
            for row in rows
        ]

    async def mark_won_back(self, activities: Collection[PurchaseActivity]) -> None:
        if not activities:
            return
        await self._conn.execute(
            _MARK_WON_BACK,
            {
                "customer_ids": [a.customer_id for a in activities],
                "last_purchase_ats": [a.last_purchase_at for a in activities],
            },
        )


def jobs_repository(conn: AsyncConnection) -> ports.JobsRepository:
    return SqlJobsRepository(conn)
