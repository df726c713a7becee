"""What apply_batch reads and writes: contacts, purchase times and new messages, set-based, so
that a whole batch costs a few statements."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifications import ports
from services.notifications.adapters.repositories.common import (
    ANY_CUSTOMER,
    Reachability,
    Scheduling,
    delivery_of,
)
from services.notifications.adapters.tables import (
    contacts,
    deliveries,
    preferences,
    purchase_activity,
)
from services.notifications.domain.model import (
    POINTS_EARNED_DIGEST,
    SECRET_PARAMS,
    WIN_BACK,
    Contact,
    Delivery,
    DeliveryStatus,
    Hold,
)
from services.notifications.domain.win_back_offers import SUPERSEDED

_SECRET_PARAMS = sa.bindparam("secret_params", type_=ARRAY(sa.Text))

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

# domain.covered_by_offer, in SQL, after the batch's purchases are recorded: a purchase later
# than the offer's start is a new activity, whose lapse is not the offer's.
_COVER_LAPSES = sa.text(
    "UPDATE purchase_activity SET win_back_for = purchase_activity.last_purchase_at "
    "FROM unnest(CAST(:customer_ids AS text[]), CAST(:starts_ats AS timestamptz[])) "
    "AS o(customer_id, starts_at) "
    "WHERE purchase_activity.customer_id = o.customer_id "
    "AND purchase_activity.last_purchase_at <= o.starts_at "
    "AND (purchase_activity.win_back_for IS NULL "
    "OR purchase_activity.win_back_for < purchase_activity.last_purchase_at)"
)


class SqlConsumerRepository(Reachability, Scheduling):
    """ports.ConsumerRepository on PostgreSQL."""

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
                table.delete().where(table.c.customer_id == ANY_CUSTOMER),
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

    async def suppress_scheduled(self, customer_ids: Collection[str], reason: str) -> int:
        if not customer_ids:
            return 0
        result = await self._conn.execute(
            deliveries.update()
            .where(
                deliveries.c.customer_id == ANY_CUSTOMER,
                deliveries.c.status == DeliveryStatus.SCHEDULED.value,
            )
            .values(
                status=DeliveryStatus.SUPPRESSED.value,
                last_error=reason,
                # Settled: a secret it carried (a sealed sign-in link) goes with it.
                params=deliveries.c.params.op("-", return_type=JSONB)(_SECRET_PARAMS),
            ),
            {"customer_ids": list(customer_ids), "secret_params": sorted(SECRET_PARAMS)},
        )
        return result.rowcount

    async def cover_lapses(self, offers: Mapping[str, datetime]) -> None:
        if not offers:
            return
        await self._conn.execute(
            _COVER_LAPSES,
            {"customer_ids": list(offers), "starts_ats": list(offers.values())},
        )
        # A dispatcher sending one of them holds its row: this waits, then finds it sent.
        await self._conn.execute(
            deliveries.update()
            .where(
                deliveries.c.customer_id == ANY_CUSTOMER,
                deliveries.c.template == WIN_BACK,
                deliveries.c.status == DeliveryStatus.SCHEDULED.value,
            )
            .values(status=DeliveryStatus.SUPPRESSED.value, last_error=SUPERSEDED),
            {"customer_ids": list(offers)},
        )

    async def open_digests(self, customer_ids: Collection[str], now: datetime) -> list[Delivery]:
        if not customer_ids:
            return []
        rows = await self._conn.execute(
            sa.select(deliveries)
            .where(
                deliveries.c.customer_id == ANY_CUSTOMER,
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
            newest.setdefault(row.customer_id, delivery_of(row))
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

    async def deliveries_by_id(self, notification_ids: Collection[str]) -> dict[str, Delivery]:
        if not notification_ids:
            return {}
        rows = await self._conn.execute(
            sa.select(deliveries)
            .where(
                deliveries.c.notification_id
                == sa.func.any(sa.bindparam("notification_ids", type_=ARRAY(sa.Text)))
            )
            .order_by(deliveries.c.notification_id)
            .with_for_update(),
            {"notification_ids": sorted(notification_ids)},
        )
        return {row.notification_id: delivery_of(row) for row in rows}


def consumer_repository(conn: AsyncConnection) -> ports.ConsumerRepository:
    return SqlConsumerRepository(conn)
