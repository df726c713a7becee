"""What the HTTP use cases read and write: preferences, partner webhooks, the delivery log,
the members behind an email address and the messages the API schedules (sign-in links)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifications import ports
from services.notifications.adapters.repositories.common import (
    ContactReads,
    Scheduling,
    WebhookReads,
    delivery_of,
)
from services.notifications.adapters.sealed_secrets import seal_webhook_secret
from services.notifications.adapters.tables import (
    contacts,
    deliveries,
    partner_webhooks,
    preferences,
)
from services.notifications.domain.model import Delivery, PartnerWebhook, Preferences


class SqlApiRepository(ContactReads, WebhookReads, Scheduling):
    """ports.ApiRepository on PostgreSQL."""

    async def customers_with_email(self, email: str, limit: int) -> list[str]:
        # lower() on both sides, as ix_contacts_email_lower is built (migration 0010).
        rows = await self._conn.execute(
            sa.select(contacts.c.customer_id)
            .where(
                sa.func.lower(contacts.c.email) == sa.func.lower(email),
                contacts.c.email.is_not(None),
            )
            .order_by(contacts.c.customer_id)
            .limit(limit)
        )
        return list(rows.scalars())

    async def save_preferences(self, chosen: Preferences) -> None:
        values = {
            "email": chosen.email,
            "sms": chosen.sms,
            "quiet_start": chosen.quiet_hours.start,
            "quiet_end": chosen.quiet_hours.end,
            "time_zone": chosen.time_zone,
            "locale": chosen.locale,
            "updated_at": chosen.updated_at,
        }
        await self._conn.execute(
            insert(preferences)
            .values(customer_id=chosen.customer_id, **values)
            .on_conflict_do_update(index_elements=[preferences.c.customer_id], set_=values)
        )

    async def register_webhook(self, webhook: PartnerWebhook, now: datetime) -> bool:
        inserted = await self._conn.scalar(
            insert(partner_webhooks)
            .values(
                partner_id=webhook.partner_id,
                url=webhook.url,
                secret=seal_webhook_secret(webhook.partner_id, webhook.secret),
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_update(
                index_elements=[partner_webhooks.c.partner_id],
                set_={"url": webhook.url, "updated_at": now},
            )
            # xmax is 0 only on a row this statement inserted.
            .returning(sa.literal_column("xmax") == 0)
        )
        return bool(inserted)

    async def remove_webhook(self, partner_id: str) -> bool:
        result = await self._conn.execute(
            partner_webhooks.delete().where(partner_webhooks.c.partner_id == partner_id)
        )
        return result.rowcount > 0

    async def deliveries_for(self, customer_id: str, limit: int) -> list[Delivery]:
        rows = await self._conn.execute(
            sa.select(deliveries)
            .where(deliveries.c.customer_id == customer_id)
            .order_by(deliveries.c.created_at.desc(), deliveries.c.notification_id.desc())
            .limit(limit)
        )
        return [delivery_of(row) for row in rows]

    async def is_known(self, customer_id: str) -> bool:
        has_contact = sa.exists().where(contacts.c.customer_id == customer_id)
        has_deliveries = sa.exists().where(deliveries.c.customer_id == customer_id)
        return bool(await self._conn.scalar(sa.select(sa.or_(has_contact, has_deliveries))))


def api_repository(conn: AsyncConnection) -> ports.ApiRepository:
    return SqlApiRepository(conn)
