"""SQL more than one repository runs: rows to domain objects, the reads of a contact, its
preferences and a partner's webhook, and the set-based scheduling of messages."""

from __future__ import annotations

import json
from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifications.adapters.sealed_secrets import unseal_webhook_secret
from services.notifications.adapters.tables import (
    contacts,
    partner_webhooks,
    preferences,
)
from services.notifications.domain.model import (
    Channel,
    Contact,
    Delivery,
    DeliveryStatus,
    Hold,
    PartnerWebhook,
    Preferences,
    QuietHours,
)

ANY_CUSTOMER = sa.func.any(sa.bindparam("customer_ids", type_=ARRAY(sa.Text)))

# Multi-row statements bound as one array per column (unnest): a handful of parameters
# whatever the batch size, and nothing for SQLAlchemy to render per row.
_SCHEDULE = sa.text(
    "INSERT INTO deliveries (notification_id, customer_id, channel, template, status, attempts, "
    "created_at, next_attempt_at, sent_at, last_error, cause_event_id, params, hold) "
    "SELECT d.notification_id, d.customer_id, d.channel, d.template, d.status, d.attempts, "
    "d.created_at, d.next_attempt_at, d.sent_at, d.last_error, d.cause_event_id, "
    "CAST(d.params AS jsonb), d.hold "
    "FROM unnest(CAST(:notification_ids AS text[]), CAST(:customer_ids AS text[]), "
    "CAST(:channels AS text[]), CAST(:templates AS text[]), CAST(:statuses AS text[]), "
    "CAST(:attempts AS integer[]), CAST(:created_ats AS timestamptz[]), "
    "CAST(:next_attempt_ats AS timestamptz[]), CAST(:sent_ats AS timestamptz[]), "
    "CAST(:last_errors AS text[]), CAST(:cause_event_ids AS text[]), CAST(:params AS text[]), "
    "CAST(:holds AS text[])) "
    "AS d(notification_id, customer_id, channel, template, status, attempts, created_at, "
    "next_attempt_at, sent_at, last_error, cause_event_id, params, hold) "
    # On the id and on (cause, channel, template): one cause never yields a message twice.
    "ON CONFLICT DO NOTHING RETURNING notification_id"
)


class SqlRepository:
    """A repository on one connection: the transaction is its caller's."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn


class ContactReads(SqlRepository):
    """One customer's contact and preferences."""

    async def contact(self, customer_id: str) -> Contact | None:
        row = (
            await self._conn.execute(
                sa.select(contacts).where(contacts.c.customer_id == customer_id)
            )
        ).first()
        return None if row is None else contact_of(row)

    async def preferences(self, customer_id: str) -> Preferences | None:
        row = (
            await self._conn.execute(
                sa.select(preferences).where(preferences.c.customer_id == customer_id)
            )
        ).first()
        if row is None:
            return None
        return Preferences(
            customer_id=row.customer_id,
            updated_at=row.updated_at,
            email=row.email,
            sms=row.sms,
            quiet_hours=QuietHours(start=row.quiet_start, end=row.quiet_end),
            time_zone=row.time_zone,
            locale=row.locale,
        )


class WebhookReads(SqlRepository):
    async def webhook(self, partner_id: str) -> PartnerWebhook | None:
        row = (
            await self._conn.execute(
                sa.select(partner_webhooks).where(partner_webhooks.c.partner_id == partner_id)
            )
        ).first()
        if row is None:
            return None
        return PartnerWebhook(
            partner_id=row.partner_id,
            url=row.url,
            secret=unseal_webhook_secret(row.partner_id, row.secret),
            created_at=row.created_at,
        )


class Reachability(SqlRepository):
    """ports.ReachabilityReads: the contacts of many customers, and which partners have a
    webhook, in one statement each."""

    async def contacts_of(self, customer_ids: Collection[str]) -> dict[str, Contact]:
        if not customer_ids:
            return {}
        rows = await self._conn.execute(
            sa.select(contacts).where(contacts.c.customer_id == ANY_CUSTOMER),
            {"customer_ids": list(customer_ids)},
        )
        return {row.customer_id: contact_of(row) for row in rows}

    async def partners_with_webhooks(self, partner_ids: Collection[str]) -> set[str]:
        if not partner_ids:
            return set()
        rows = await self._conn.execute(
            sa.select(partner_webhooks.c.partner_id).where(
                partner_webhooks.c.partner_id
                == sa.func.any(sa.bindparam("partner_ids", type_=ARRAY(sa.Text)))
            ),
            {"partner_ids": list(partner_ids)},
        )
        return set(rows.scalars())


class Scheduling(SqlRepository):
    """ports.Scheduler: new messages, in one statement whatever their number."""

    async def schedule(self, deliveries: Collection[Delivery]) -> set[str]:
        if not deliveries:
            return set()
        result = await self._conn.execute(
            _SCHEDULE,
            {
                "notification_ids": [d.notification_id for d in deliveries],
                "customer_ids": [d.customer_id for d in deliveries],
                "channels": [d.channel.value for d in deliveries],
                "templates": [d.template for d in deliveries],
                "statuses": [d.status.value for d in deliveries],
                "attempts": [d.attempts for d in deliveries],
                "created_ats": [d.created_at for d in deliveries],
                "next_attempt_ats": [d.next_attempt_at for d in deliveries],
                "sent_ats": [d.sent_at for d in deliveries],
                "last_errors": [d.last_error for d in deliveries],
                "cause_event_ids": [d.cause_event_id for d in deliveries],
                "params": [json.dumps(d.params) for d in deliveries],
                "holds": [d.hold.value if d.hold else None for d in deliveries],
            },
        )
        return set(result.scalars())


def contact_of(row: sa.Row[tuple[object, ...]]) -> Contact:
    return Contact(
        customer_id=row.customer_id,
        email=row.email,
        phone=row.phone,
        locale=row.locale,
        time_zone=row.time_zone,
        consent_email=row.consent_email,
        consent_sms=row.consent_sms,
        updated_at=row.updated_at,
        profile_version=row.profile_version,
        partner_id=row.partner_id,
    )


def delivery_of(row: sa.Row[tuple[object, ...]]) -> Delivery:
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
        hold=Hold(row.hold) if row.hold else None,
        released_as_of=row.released_as_of,
    )
