"""The notifications repository: the domain's view of contacts and the delivery log."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifications.adapters.tables import (
    contacts,
    deliveries,
    partner_webhooks,
    preferences,
    purchase_activity,
)
from services.notifications.domain.model import (
    PERSONAL_CHANNELS,
    POINTS_EARNED_DIGEST,
    Channel,
    Contact,
    Delivery,
    DeliveryStatus,
    Hold,
    PartnerWebhook,
    Preferences,
    PurchaseActivity,
    QuietHours,
)


class NotificationRepository(Protocol):
    """The consumer's path: set-based, so that a whole batch costs a few statements."""

    async def upsert_contacts(self, contacts: Collection[Contact]) -> None:
        """Stores each profile that supersedes the stored one (Contact.supersedes: the higher
        version, by time only between unversioned profiles), so that a late or replayed older
        profile never overwrites a newer one. At most one profile per customer."""
        ...

    async def delete_contacts(self, customer_ids: Collection[str]) -> None:
        """Everything kept about these customers but the delivery log: the contact, the
        preferences and the purchase activity."""
        ...

    async def record_purchases(self, last_purchase_at: Mapping[str, datetime]) -> None:
        """Moves each customer's last purchase time forward to the given one; never back, so
        a late or replayed older purchase changes nothing."""
        ...

    async def schedule(self, deliveries: Collection[Delivery]) -> set[str]:
        """Stores the messages that do not exist yet (same id, or same cause, channel and
        template); returns the ids of those that were new."""
        ...

    async def suppress_scheduled(self, customer_ids: Collection[str], reason: str) -> int:
        """Suppresses every message still waiting for these customers; returns how many."""
        ...

    async def open_digests(self, customer_ids: Collection[str], now: datetime) -> list[Delivery]:
        """The points digests of these customers still gathering earnings at `now` (not yet
        due, never attempted, not held), at most one per customer, locked for the current
        transaction so that no dispatcher takes one while an earning joins it."""
        ...

    async def update_digests(self, digests: Collection[Delivery]) -> None:
        """Rewrites the params of digests that earnings joined, if they are still waiting."""
        ...

    async def contacts_of(self, customer_ids: Collection[str]) -> dict[str, Contact]:
        """The stored contacts of these customers (those that have one)."""
        ...

    async def partners_with_webhooks(self, partner_ids: Collection[str]) -> set[str]:
        """Those of these partners that have registered a webhook."""
        ...


class DispatchRepository(Protocol):
    """The dispatcher's path: one message at a time, each in its own transaction."""

    async def contact(self, customer_id: str) -> Contact | None: ...

    async def preferences(self, customer_id: str) -> Preferences | None: ...

    async def sent_between(
        self, customer_id: str, start: datetime, end: datetime, *, other_than: str | None = None
    ) -> int:
        """How many messages the customer was sent in [start, end) over the channels they
        read: one per triggering event whatever the number of channels it went out on, and
        not counting the event `other_than` (the one the message being decided is for)."""
        ...

    async def webhook(self, partner_id: str) -> PartnerWebhook | None: ...

    async def claim_due(self, now: datetime, limit: int) -> list[Delivery]:
        """Scheduled messages due by `now`, oldest first, locked for the current transaction;
        rows another transaction holds are skipped, so no two dispatchers take the same one."""
        ...

    async def save(self, delivery: Delivery) -> None:
        """Writes a claimed message's new status, attempts and timings."""
        ...


# Multi-row statements bound as one array per column (unnest): a handful of parameters
# whatever the batch size, and nothing for SQLAlchemy to render per row.
_UPSERT_CONTACTS = sa.text(
    "INSERT INTO contacts (customer_id, email, phone, locale, time_zone, consent_email, "
    "consent_sms, updated_at, profile_version, partner_id) "
    "SELECT * FROM unnest(CAST(:customer_ids AS text[]), CAST(:emails AS text[]), "
    "CAST(:phones AS text[]), CAST(:locales AS text[]), CAST(:time_zones AS text[]), "
    "CAST(:consent_emails AS boolean[]), CAST(:consent_sms AS boolean[]), "
    "CAST(:updated_ats AS timestamptz[]), CAST(:profile_versions AS bigint[]), "
    "CAST(:partner_ids AS text[])) "
    "ON CONFLICT (customer_id) DO UPDATE SET email = excluded.email, phone = excluded.phone, "
    "locale = excluded.locale, time_zone = excluded.time_zone, "
    "consent_email = excluded.consent_email, consent_sms = excluded.consent_sms, "
    "updated_at = excluded.updated_at, profile_version = excluded.profile_version, "
    "partner_id = COALESCE(excluded.partner_id, contacts.partner_id) "
    # Contact.supersedes, in SQL: a late or replayed older profile must not overwrite a newer
    # one. Versions decide; times only between two unversioned profiles.
    "WHERE CASE WHEN contacts.profile_version IS NULL "
    "THEN excluded.profile_version IS NOT NULL OR contacts.updated_at <= excluded.updated_at "
    "ELSE COALESCE(excluded.profile_version > contacts.profile_version, false) END"
)

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

_UPDATE_PARAMS = sa.text(
    "UPDATE deliveries SET params = CAST(u.params AS jsonb) "
    "FROM unnest(CAST(:notification_ids AS text[]), CAST(:params AS text[])) "
    "AS u(notification_id, params) "
    "WHERE deliveries.notification_id = u.notification_id AND deliveries.status = 'scheduled'"
)

_RECORD_PURCHASES = sa.text(
    "INSERT INTO purchase_activity (customer_id, last_purchase_at) "
    "SELECT * FROM unnest(CAST(:customer_ids AS text[]), "
    "CAST(:last_purchase_ats AS timestamptz[])) "
    "ON CONFLICT (customer_id) DO UPDATE SET last_purchase_at = excluded.last_purchase_at "
    "WHERE purchase_activity.last_purchase_at < excluded.last_purchase_at"
)

_MARK_WON_BACK = sa.text(
    "UPDATE purchase_activity SET win_back_for = w.last_purchase_at "
    "FROM unnest(CAST(:customer_ids AS text[]), CAST(:last_purchase_ats AS timestamptz[])) "
    "AS w(customer_id, last_purchase_at) "
    "WHERE purchase_activity.customer_id = w.customer_id"
)

_ANY_CUSTOMER = sa.func.any(sa.bindparam("customer_ids", type_=ARRAY(sa.Text)))


class SqlNotificationRepository:
    """Both paths, and the delivery log the API reads."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def upsert_contacts(self, contacts: Collection[Contact]) -> None:
        if not contacts:
            return
        await self._conn.execute(
            _UPSERT_CONTACTS,
            {
                "customer_ids": [c.customer_id for c in contacts],
                "emails": [c.email for c in contacts],
                "phones": [c.phone for c in contacts],
                "locales": [c.locale for c in contacts],
                "time_zones": [c.time_zone for c in contacts],
                "consent_emails": [c.consent_email for c in contacts],
                "consent_sms": [c.consent_sms for c in contacts],
                "updated_ats": [c.updated_at for c in contacts],
                "profile_versions": [c.profile_version for c in contacts],
                "partner_ids": [c.partner_id for c in contacts],
            },
        )

    async def delete_contacts(self, customer_ids: Collection[str]) -> None:
        """The contact and the preferences, the customer's personal data, and what they
        bought when, so that no win-back follows an erasure."""
        if not customer_ids:
            return
        for table in (contacts, preferences, purchase_activity):
            await self._conn.execute(
                table.delete().where(table.c.customer_id == _ANY_CUSTOMER),
                {"customer_ids": list(customer_ids)},
            )

    async def record_purchases(self, last_purchase_at: Mapping[str, datetime]) -> None:
        if not last_purchase_at:
            return
        await self._conn.execute(
            _RECORD_PURCHASES,
            {
                "customer_ids": list(last_purchase_at),
                "last_purchase_ats": list(last_purchase_at.values()),
            },
        )

    async def lapsed(self, as_of: datetime, after: timedelta) -> list[PurchaseActivity]:
        """The customers without a purchase for `after` by `as_of` and no win-back for this
        lapse yet (domain.is_lapsed, in SQL), locked until the transaction ends. Only those
        with a contact: none for an erased customer whose purchases still arrive, and one
        whose profile has not arrived yet is taken once it has."""
        rows = await self._conn.execute(
            sa.select(purchase_activity)
            .where(
                purchase_activity.c.last_purchase_at <= as_of - after,
                sa.or_(
                    purchase_activity.c.win_back_for.is_(None),
                    purchase_activity.c.win_back_for < purchase_activity.c.last_purchase_at,
                ),
                sa.exists().where(contacts.c.customer_id == purchase_activity.c.customer_id),
            )
            .order_by(purchase_activity.c.customer_id)
            .with_for_update()
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
        """Remembers the lapse each customer's win-back was for."""
        if not activities:
            return
        await self._conn.execute(
            _MARK_WON_BACK,
            {
                "customer_ids": [a.customer_id for a in activities],
                "last_purchase_ats": [a.last_purchase_at for a in activities],
            },
        )

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

    async def webhook(self, partner_id: str) -> PartnerWebhook | None:
        row = (
            await self._conn.execute(
                sa.select(partner_webhooks).where(partner_webhooks.c.partner_id == partner_id)
            )
        ).first()
        if row is None:
            return None
        return PartnerWebhook(
            partner_id=row.partner_id, url=row.url, secret=row.secret, created_at=row.created_at
        )

    async def register_webhook(self, webhook: PartnerWebhook, now: datetime) -> bool:
        """Stores a partner's webhook; an existing one keeps its secret and takes the new URL.
        True when it was new."""
        inserted = await self._conn.scalar(
            insert(partner_webhooks)
            .values(
                partner_id=webhook.partner_id,
                url=webhook.url,
                secret=webhook.secret,
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

    async def contacts_of(self, customer_ids: Collection[str]) -> dict[str, Contact]:
        if not customer_ids:
            return {}
        rows = await self._conn.execute(
            sa.select(contacts).where(contacts.c.customer_id == _ANY_CUSTOMER),
            {"customer_ids": list(customer_ids)},
        )
        return {row.customer_id: _contact(row) for row in rows}

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

    async def release(self, as_of: datetime, *, held: bool) -> int:
        """Makes due now the waiting messages whose wait ended by `as_of`, remembering that
        instant so the dispatcher judges them as of it: those held by quiet hours or the
        cap (`held`), or those waiting to retry a failed attempt. A message already released
        as of that instant or later is left alone, so a second run changes nothing."""
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

    async def contact(self, customer_id: str) -> Contact | None:
        row = (
            await self._conn.execute(
                sa.select(contacts).where(contacts.c.customer_id == customer_id)
            )
        ).first()
        return None if row is None else _contact(row)

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
                hold=delivery.hold.value if delivery.hold else None,
                released_as_of=delivery.released_as_of,
            )
        )

    async def suppress_scheduled(self, customer_ids: Collection[str], reason: str) -> int:
        if not customer_ids:
            return 0
        result = await self._conn.execute(
            deliveries.update()
            .where(
                deliveries.c.customer_id == _ANY_CUSTOMER,
                deliveries.c.status == DeliveryStatus.SCHEDULED.value,
            )
            .values(status=DeliveryStatus.SUPPRESSED.value, last_error=reason),
            {"customer_ids": list(customer_ids)},
        )
        return result.rowcount

    async def open_digests(self, customer_ids: Collection[str], now: datetime) -> list[Delivery]:
        if not customer_ids:
            return []
        rows = await self._conn.execute(
            sa.select(deliveries)
            .where(
                deliveries.c.customer_id == _ANY_CUSTOMER,
                deliveries.c.template == POINTS_EARNED_DIGEST,
                deliveries.c.status == DeliveryStatus.SCHEDULED.value,
                deliveries.c.attempts == 0,
                deliveries.c.hold == Hold.DIGEST_WINDOW.value,
                deliveries.c.released_as_of.is_(None),
                deliveries.c.next_attempt_at > now,
            )
            .order_by(deliveries.c.customer_id, deliveries.c.created_at.desc())
            .with_for_update(),
            {"customer_ids": list(customer_ids)},
        )
        newest: dict[str, Delivery] = {}
        for row in rows:
            newest.setdefault(row.customer_id, _delivery(row))
        return list(newest.values())

    async def update_digests(self, digests: Collection[Delivery]) -> None:
        if not digests:
            return
        await self._conn.execute(
            _UPDATE_PARAMS,
            {
                "notification_ids": [d.notification_id for d in digests],
                "params": [json.dumps(d.params) for d in digests],
            },
        )

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


def _contact(row: sa.Row[tuple[object, ...]]) -> Contact:
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
        hold=Hold(row.hold) if row.hold else None,
        released_as_of=row.released_as_of,
    )
