"""The notifications repository: the domain's view of contacts and the delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifications.adapters.tables import contacts, deliveries
from services.notifications.domain.model import Channel, Contact, Delivery, DeliveryStatus
from shared.db import insert_if_absent


class NotificationRepository(Protocol):
    async def upsert_contact(self, contact: Contact) -> None: ...

    async def delete_contact(self, customer_id: str) -> bool:
        """False when there was no contact to delete."""
        ...

    async def contact(self, customer_id: str) -> Contact | None: ...

    async def schedule(self, delivery: Delivery) -> bool:
        """False when this message already exists (same id, or same cause, channel and template)."""
        ...

    async def claim_due(self, now: datetime, limit: int) -> list[Delivery]:
        """Scheduled messages due by `now`, oldest first, locked for the current transaction;
        rows another transaction holds are skipped, so no two dispatchers take the same one."""
        ...

    async def save(self, delivery: Delivery) -> None:
        """Writes a claimed message's new status, attempts and timings."""
        ...

    async def suppress_scheduled(self, customer_id: str, reason: str) -> int:
        """Suppresses every message still waiting for this customer; returns how many."""
        ...

    async def deliveries_for(self, customer_id: str, limit: int) -> list[Delivery]:
        """Newest first."""
        ...

    async def is_known(self, customer_id: str) -> bool: ...


class SqlNotificationRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def upsert_contact(self, contact: Contact) -> None:
        statement = insert(contacts).values(
            customer_id=contact.customer_id,
            email=contact.email,
            phone=contact.phone,
            locale=contact.locale,
            time_zone=contact.time_zone,
            consent_email=contact.consent_email,
            consent_sms=contact.consent_sms,
            updated_at=contact.updated_at,
        )
        excluded = statement.excluded
        # A replayed older profile must not overwrite a newer one.
        await self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=["customer_id"],
                set_={
                    "email": excluded.email,
                    "phone": excluded.phone,
                    "locale": excluded.locale,
                    "time_zone": excluded.time_zone,
                    "consent_email": excluded.consent_email,
                    "consent_sms": excluded.consent_sms,
                    "updated_at": excluded.updated_at,
                },
                where=contacts.c.updated_at <= excluded.updated_at,
            )
        )

    async def delete_contact(self, customer_id: str) -> bool:
        result = await self._conn.execute(
            contacts.delete()
            .where(contacts.c.customer_id == customer_id)
            .returning(contacts.c.customer_id)
        )
        return result.first() is not None

    async def contact(self, customer_id: str) -> Contact | None:
        row = (
            await self._conn.execute(
                sa.select(contacts).where(contacts.c.customer_id == customer_id)
            )
        ).first()
        if row is None:
            return None
        return Contact(
            customer_id=row.customer_id,
            email=row.email,
            phone=row.phone,
            locale=row.locale,
            time_zone=row.time_zone,
            consent_email=row.consent_email,
            consent_sms=row.consent_sms,
            updated_at=row.updated_at,
        )

    async def schedule(self, delivery: Delivery) -> bool:
        return await insert_if_absent(
            self._conn,
            deliveries,
            dict(
                notification_id=delivery.notification_id,
                customer_id=delivery.customer_id,
                channel=delivery.channel.value,
                template=delivery.template,
                status=delivery.status.value,
                attempts=delivery.attempts,
                created_at=delivery.created_at,
                next_attempt_at=delivery.next_attempt_at,
                sent_at=delivery.sent_at,
                last_error=delivery.last_error,
                cause_event_id=delivery.cause_event_id,
                params=delivery.params,
            ),
        )

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
        return [_delivery(row) for row in rows]

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
            )
        )

    async def suppress_scheduled(self, customer_id: str, reason: str) -> int:
        result = await self._conn.execute(
            deliveries.update()
            .where(
                deliveries.c.customer_id == customer_id,
                deliveries.c.status == DeliveryStatus.SCHEDULED.value,
            )
            .values(status=DeliveryStatus.SUPPRESSED.value, last_error=reason)
            .returning(deliveries.c.notification_id)
        )
        return len(result.all())

    async def deliveries_for(self, customer_id: str, limit: int) -> list[Delivery]:
        rows = await self._conn.execute(
            sa.select(deliveries)
            .where(deliveries.c.customer_id == customer_id)
            .order_by(deliveries.c.created_at.desc(), deliveries.c.notification_id.desc())
            .limit(limit)
        )
        return [_delivery(row) for row in rows]

    async def is_known(self, customer_id: str) -> bool:
        has_contact = sa.exists().where(contacts.c.customer_id == customer_id)
        has_deliveries = sa.exists().where(deliveries.c.customer_id == customer_id)
        return bool(await self._conn.scalar(sa.select(sa.or_(has_contact, has_deliveries))))


def _delivery(row: sa.Row[tuple[object, ...]]) -> Delivery:
    return Delivery(
        notification_id=row.notification_id,
        customer_id=row.customer_id,
        channel=Channel(row.channel),
        template=row.template,
        cause_event_id=row.cause_event_id,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        sent_at=row.sent_at,
        last_error=row.last_error,
        params=dict(row.params),
    )
