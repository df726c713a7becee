"""What the dispatcher reads and writes: a batch of due messages, claimed so that no two
dispatchers take one, with what deciding their fate needs, a statement each for the batch."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifications import ports
from services.notifications.adapters.repositories.common import (
    ANY_CUSTOMER,
    ContactReads,
    Reachability,
    WebhookReads,
    delivery_of,
)
from services.notifications.adapters.sealed_secrets import unseal_webhook_secret
from services.notifications.adapters.tables import deliveries, partner_webhooks, preferences
from services.notifications.domain.model import (
    PERSONAL_CHANNELS,
    REQUESTED_TEMPLATES,
    SECRET_TEMPLATES,
    TRANSACTIONAL_LANE,
    Delivery,
    DeliveryStatus,
    PartnerWebhook,
    Preferences,
    QuietHours,
    SentMessage,
)
from shared.sealing import SealingError

_TRANSACTIONAL = sa.bindparam("transactional", type_=ARRAY(sa.Text))
_NO_TIME: sa.ColumnElement[timedelta] = sa.literal_column("interval '0'", sa.Interval)

# Per customer, the sends in its span: one array per column (unnest), so a batch costs one
# statement and a handful of parameters whatever its size.
_SENT_DURING = sa.text(
    "SELECT d.customer_id, d.cause_event_id, d.sent_at FROM deliveries AS d "
    "JOIN unnest(CAST(:customer_ids AS text[]), CAST(:starts AS timestamptz[]), "
    "CAST(:ends AS timestamptz[])) AS span(customer_id, start_at, end_at) "
    "ON d.customer_id = span.customer_id "
    "AND d.sent_at >= span.start_at AND d.sent_at < span.end_at "
    "WHERE d.status = :sent AND d.channel = ANY(CAST(:channels AS text[])) "
    # What the member asked for is not one of the day's messages (domain.counts_against_cap).
    "AND d.template <> ALL(CAST(:uncounted AS text[]))"
)

_SAVE_ALL = sa.text(
    "UPDATE deliveries SET status = s.status, attempts = s.attempts, "
    "next_attempt_at = s.next_attempt_at, sent_at = s.sent_at, last_error = s.last_error, "
    "hold = s.hold, released_as_of = s.released_as_of, "
    # Params are written only for messages carrying a secret (domain.guard_secrets removed
    # it once settled); NULL keeps the others' as they are.
    "params = COALESCE(CAST(s.params AS jsonb), deliveries.params) "
    "FROM unnest(CAST(:notification_ids AS text[]), CAST(:statuses AS text[]), "
    "CAST(:attempts AS integer[]), CAST(:next_attempt_ats AS timestamptz[]), "
    "CAST(:sent_ats AS timestamptz[]), CAST(:last_errors AS text[]), CAST(:holds AS text[]), "
    "CAST(:released_as_ofs AS timestamptz[]), CAST(:params AS text[])) "
    "AS s(notification_id, status, attempts, next_attempt_at, sent_at, last_error, hold, "
    "released_as_of, params) "
    "WHERE deliveries.notification_id = s.notification_id"
)


log = logging.getLogger(__name__)


class SqlDispatchRepository(Reachability, ContactReads, WebhookReads):
    """ports.DispatchRepository on PostgreSQL."""

    async def claim_due(self, now: datetime, limit: int) -> list[Delivery]:
        """The transactional lane, then the bulk lane for what room is left."""
        transactional = deliveries.c.template == sa.func.any(_TRANSACTIONAL)
        # The transactional lane is read through ix_deliveries_due_by_template and sorted
        # (it holds few rows): ordered by an expression, so that the planner never walks
        # ix_deliveries_due in order hoping to meet a transactional row soon, which reads
        # every due row of a bulk run when there is none (166 ms at 120,000 due, not 0.2).
        claimed = await self._claim(
            now, limit, transactional, deliveries.c.next_attempt_at + _NO_TIME
        )
        if len(claimed) < limit:
            # Bulk rows are most of what is due: ix_deliveries_due in order, no sort.
            bulk = deliveries.c.template != sa.func.all(_TRANSACTIONAL)
            claimed += await self._claim(
                now, limit - len(claimed), bulk, deliveries.c.next_attempt_at
            )
        return claimed

    async def _claim(
        self,
        now: datetime,
        limit: int,
        lane: sa.ColumnElement[bool],
        due_order: sa.ColumnElement[Any],
    ) -> list[Delivery]:
        rows = await self._conn.execute(
            sa.select(deliveries)
            .where(
                deliveries.c.status == DeliveryStatus.SCHEDULED.value,
                deliveries.c.next_attempt_at <= now,
                lane,
            )
            .order_by(due_order)
            .limit(limit)
            .with_for_update(skip_locked=True),
            {"transactional": sorted(TRANSACTIONAL_LANE)},
        )
        return [delivery_of(row) for row in rows]

    async def preferences_of(self, customer_ids: Collection[str]) -> dict[str, Preferences]:
        if not customer_ids:
            return {}
        rows = await self._conn.execute(
            sa.select(preferences).where(preferences.c.customer_id == ANY_CUSTOMER),
            {"customer_ids": list(customer_ids)},
        )
        return {
            row.customer_id: Preferences(
                customer_id=row.customer_id,
                updated_at=row.updated_at,
                email=row.email,
                sms=row.sms,
                quiet_hours=QuietHours(start=row.quiet_start, end=row.quiet_end),
                time_zone=row.time_zone,
                locale=row.locale,
            )
            for row in rows
        }

    async def webhooks_of(self, partner_ids: Collection[str]) -> dict[str, PartnerWebhook]:
        if not partner_ids:
            return {}
        rows = await self._conn.execute(
            sa.select(partner_webhooks).where(
                partner_webhooks.c.partner_id
                == sa.func.any(sa.bindparam("partner_ids", type_=ARRAY(sa.Text)))
            ),
            {"partner_ids": list(partner_ids)},
        )
        found: dict[str, PartnerWebhook] = {}
        for row in rows:
            try:
                secret = unseal_webhook_secret(row.partner_id, row.secret)
            except SealingError as error:
                # One webhook whose secret does not open (sealed under a key this process was
                # not given, or not sealed here) must not stop every other message: its calls
                # go without it (suppressed, as without a webhook) until it is fixed.
                log.error(
                    "webhook secret of partner %s does not open (%s): its calls are suppressed",
                    row.partner_id,
                    type(error).__name__,
                )
                continue
            found[row.partner_id] = PartnerWebhook(
                partner_id=row.partner_id, url=row.url, secret=secret, created_at=row.created_at
            )
        return found

    async def sent_during(
        self, spans: Mapping[str, tuple[datetime, datetime]]
    ) -> dict[str, list[SentMessage]]:
        if not spans:
            return {}
        customer_ids = list(spans)
        rows = await self._conn.execute(
            _SENT_DURING,
            {
                "customer_ids": customer_ids,
                "starts": [spans[c][0] for c in customer_ids],
                "ends": [spans[c][1] for c in customer_ids],
                "sent": DeliveryStatus.SENT.value,
                "channels": sorted(c.value for c in PERSONAL_CHANNELS),
                "uncounted": sorted(REQUESTED_TEMPLATES),
            },
        )
        sent: dict[str, list[SentMessage]] = {}
        for row in rows:
            sent.setdefault(row.customer_id, []).append(
                SentMessage(row.cause_event_id, row.sent_at)
            )
        return sent

    async def save_all(self, deliveries: Collection[Delivery]) -> None:
        if not deliveries:
            return
        await self._conn.execute(
            _SAVE_ALL,
            {
                "notification_ids": [d.notification_id for d in deliveries],
                "statuses": [d.status.value for d in deliveries],
                "attempts": [d.attempts for d in deliveries],
                "next_attempt_ats": [d.next_attempt_at for d in deliveries],
                "sent_ats": [d.sent_at for d in deliveries],
                "last_errors": [d.last_error for d in deliveries],
                "holds": [d.hold.value if d.hold else None for d in deliveries],
                "released_as_ofs": [d.released_as_of for d in deliveries],
                "params": [
                    json.dumps(d.params) if d.template in SECRET_TEMPLATES else None
                    for d in deliveries
                ],
            },
        )


def dispatch_repository(conn: AsyncConnection) -> ports.DispatchRepository:
    return SqlDispatchRepository(conn)
