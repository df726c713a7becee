"""What the dispatcher reads and writes: one due message at a time, claimed so that no two
dispatchers take it, with what deciding its fate needs."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifications import ports
from services.notifications.adapters.repositories.common import (
    ContactReads,
    WebhookReads,
    delivery_of,
)
from services.notifications.adapters.tables import deliveries
from services.notifications.domain.model import PERSONAL_CHANNELS, Delivery, DeliveryStatus


class SqlDispatchRepository(ContactReads, WebhookReads):
    """ports.DispatchRepository on PostgreSQL."""

    async def sent_between(
        self, customer_id: str, start: datetime, end: datetime, *, other_than: str | None = None
    ) -> int:
        count = await self._conn.scalar(
            sa.select(sa.func.count(sa.distinct(deliveries.c.cause_event_id)))
            .select_from(deliveries)
            .where(
                deliveries.c.customer_id == customer_id,
                deliveries.c.status == DeliveryStatus.SENT.value,
                deliveries.c.sent_at >= start,
                deliveries.c.sent_at < end,
                deliveries.c.channel.in_([c.value for c in PERSONAL_CHANNELS]),
                *([deliveries.c.cause_event_id != other_than] if other_than else []),
            )
        )
        return int(count or 0)

    async def claim_due(self, now: datetime, limit: int) -> list[Delivery]:
        rows = await self._conn.execute(
            sa.select(deliveries)
            .where(
                deliveries.c.status == DeliveryStatus.SCHEDULED.value,
                deliveries.c.next_attempt_at <= now,
            )
            .order_by(deliveries.c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [delivery_of(row) for row in rows]

    async def save(self, delivery: Delivery) -> None:
        await self._conn.execute(
            deliveries.update()
            .where(deliveries.c.notification_id == delivery.notification_id)
            .values(
                status=delivery.status.value,
                attempts=delivery.attempts,
                next_attempt_at=delivery.next_attempt_at,
                sent_at=delivery.sent_at,
                last_error=delivery.last_error,
                hold=delivery.hold.value if delivery.hold else None,
                released_as_of=delivery.released_as_of,
            )
        )


def dispatch_repository(conn: AsyncConnection) -> ports.DispatchRepository:
    return SqlDispatchRepository(conn)
