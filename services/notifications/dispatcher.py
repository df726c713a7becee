"""The dispatcher: sends the messages that are due, one dispatcher per message at a time.

Each message is claimed with FOR UPDATE SKIP LOCKED, so several instances share the work
without sending one message twice, and its outcome (with its `notification.*` event in the
outbox) is recorded in that same transaction. A crash after the SMTP server accepted a message
but before the commit sends that one message again on the next round; the Message-ID, derived
from the notification id, stays the same so that the copy can be recognised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from prometheus_client import Counter

from services.notifications.adapters.http_channels import (
    HttpDeliveryError,
    OutgoingSms,
    OutgoingWebhook,
    SmsSender,
    WebhookSender,
)
from services.notifications.adapters.smtp import EmailDeliveryError, EmailSender, OutgoingEmail
from services.notifications.domain import templates
from services.notifications.domain.model import (
    Channel,
    Decision,
    Delivery,
    DeliveryPolicy,
    DeliveryStatus,
    HarassmentPolicy,
    PartnerWebhook,
    Send,
    Suppress,
    Wait,
    decide,
    local_day,
    mark_attempt_failed,
    mark_sent,
    mark_suppressed,
    mark_waiting,
    time_zone_of,
)
from services.notifications.ports import DispatchRepository
from shared.clock import Clock
from shared.messaging import events
from shared.messaging.outbox import EventSink, emit

log = logging.getLogger(__name__)

SOURCE = "notifications"

DELIVERIES = Counter(
    "fedelta_notification_deliveries_total",
    "Delivery attempts by channel, template and outcome",
    ["channel", "template", "outcome"],
)


@dataclass(frozen=True)
class DispatchUnit:
    """What one dispatch round works with, all on one database transaction."""

    notifications: DispatchRepository
    sink: EventSink


T = TypeVar("T")


class DispatchTransactions(Protocol):
    """Runs `work` on a unit in one transaction (shared.storage.transactions.in_transaction):
    committed when `work` returns, rolled back when it raises."""

    async def __call__(self, work: Callable[[DispatchUnit], Awaitable[T]]) -> T: ...


@dataclass
class DeliveryDispatcher:
    transactions: DispatchTransactions
    sender: EmailSender
    clock: Clock
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    harassment: HarassmentPolicy = field(default_factory=HarassmentPolicy)
    interval: float = 0.2
    batch_size: int = 20
    after_commit: Callable[[], None] | None = None
    # The customer's one-click unsubscribe URL, put in every email when given.
    unsubscribe_url: Callable[[str], str] | None = None
    # None while no SMS provider is configured: SMS messages are then suppressed, saying so.
    sms: SmsSender | None = None
    webhooks: WebhookSender | None = None
    name: str = "notifications-dispatcher"

    def __post_init__(self) -> None:
        self._stopping = asyncio.Event()

    async def dispatch_due(self) -> int:
        """One round; returns how many due messages it took (sent, retried, waiting or not).

        One transaction per message: a crash between an SMTP server's acceptance and the
        commit can then send again only the message that was in flight, not a whole batch."""
        taken = 0
        while taken < self.batch_size:
            wrote_event = await self.transactions(self._dispatch_next)
            if wrote_event is None:
                break
            taken += 1
            if wrote_event and self.after_commit is not None:
                self.after_commit()
        return taken

    async def _dispatch_next(self, unit: DispatchUnit) -> bool | None:
        """Claims the oldest due message and decides its fate: None when none is due, else
        whether an event was written. Safe to run again after a lost connection: the claim
        was rolled back with the rest, and email is at-least-once anyway."""
        due = await unit.notifications.claim_due(self.clock.now(), 1)
        if not due:
            return None
        return await self._dispatch(due[0], unit)

    async def run(self) -> None:
        while not self._stopping.is_set():
            taken = await self.dispatch_due()
            if taken >= self.batch_size:
                continue  # more may be due right now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)

    async def stop(self) -> None:
        self._stopping.set()

    async def _dispatch(self, delivery: Delivery, unit: DispatchUnit) -> bool:
        """Decides and records one message's fate; True when an event was written."""
        now = self.clock.now()
        # A message a job released as of a later instant (an operator or a test replaying a
        # date) is judged as of that instant, so that replaying the date behaves as the date.
        judged_at = max(now, delivery.released_as_of or now)
        contact = await unit.notifications.contact(delivery.customer_id)
        preferences = await unit.notifications.preferences(delivery.customer_id)
        webhook = None
        if delivery.channel is Channel.WEBHOOK and contact is not None and contact.partner_id:
            webhook = await unit.notifications.webhook(contact.partner_id)
        day_start, day_end = local_day(judged_at, time_zone_of(contact, preferences))
        sent_today = await unit.notifications.sent_between(
            delivery.customer_id, day_start, day_end, other_than=delivery.cause_event_id
        )
        decision: Decision = decide(
            delivery,
            contact,
            judged_at,
            self.policy,
            preferences=preferences,
            harassment=self.harassment,
            sent_today=sent_today,
            webhook=webhook,
        )
        if isinstance(decision, Send) and self._sender_of(delivery.channel) is None:
            decision = Suppress(f"no {delivery.channel.value} provider configured")
        if isinstance(decision, Wait):
            await unit.notifications.save(mark_waiting(delivery, decision.until, decision.hold))
            if decision.hold is not None:
                self._record(delivery, "held", decision.hold.value)
            return False
        if isinstance(decision, Suppress):
            await unit.notifications.save(mark_suppressed(delivery, decision.reason))
            self._record(delivery, "suppressed", decision.reason)
            return False
        assert isinstance(decision, Send)
        try:
            await self._send(delivery, decision, webhook, now)
        except Exception as error:
            reason, permanent = _failure(error)
            outcome = mark_attempt_failed(delivery, reason, now, self.policy, permanent=permanent)
            await unit.notifications.save(outcome)
            if outcome.status is DeliveryStatus.FAILED:
                self._record(outcome, "failed", reason)
                await self._emit_failed(outcome, unit.sink, now)
                return True
            self._record(outcome, "retry", reason)
            return False
        sent = mark_sent(delivery, self.clock.now())
        await unit.notifications.save(sent)
        self._record(sent, "sent")
        await self._emit_delivered(sent, unit.sink, now)
        return True

    def _sender_of(self, channel: Channel) -> object | None:
        if channel is Channel.SMS:
            return self.sms
        if channel is Channel.WEBHOOK:
            return self.webhooks
        return self.sender

    async def _send(
        self, delivery: Delivery, send: Send, webhook: PartnerWebhook | None, now: datetime
    ) -> None:
        if delivery.channel is Channel.SMS:
            assert self.sms is not None
            text = templates.render_sms(delivery.template, send.locale, delivery.params)
            await self.sms.send(
                OutgoingSms(
                    notification_id=delivery.notification_id, to=send.address, text=text.body
                )
            )
        elif delivery.channel is Channel.WEBHOOK:
            assert self.webhooks is not None and webhook is not None
            await self.webhooks.send(
                OutgoingWebhook(
                    notification_id=delivery.notification_id,
                    url=webhook.url,
                    secret=webhook.secret,
                    payload=webhook_payload(delivery, webhook.partner_id, now),
                )
            )
        else:
            await self.sender.send(self._email(delivery, send, now))

    def _email(self, delivery: Delivery, send: Send, now: datetime) -> OutgoingEmail:
        unsubscribe = self.unsubscribe_url(delivery.customer_id) if self.unsubscribe_url else None
        message = templates.render(
            delivery.template, send.locale, delivery.params, unsubscribe_url=unsubscribe
        )
        return OutgoingEmail(
            notification_id=delivery.notification_id,
            to=send.address,
            subject=message.subject,
            body=message.body,
            html=message.html,
            unsubscribe_url=unsubscribe,
            locale=message.locale,
            date=now,
        )

    async def _emit_delivered(self, delivery: Delivery, sink: EventSink, now: datetime) -> None:
        outcome = events.NotificationDelivered(
            notification_id=delivery.notification_id,
            customer_id=delivery.customer_id,
            channel=delivery.channel.value,
            template=delivery.template,
            attempt=delivery.attempts,
        )
        await emit(
            sink,
            outcome,
            source=SOURCE,
            customer_id=delivery.customer_id,
            time=now,
            cause_id=delivery.notification_id,
            purpose="delivered",
        )

    async def _emit_failed(self, delivery: Delivery, sink: EventSink, now: datetime) -> None:
        outcome = events.NotificationFailed(
            notification_id=delivery.notification_id,
            customer_id=delivery.customer_id,
            channel=delivery.channel.value,
            template=delivery.template,
            attempt=delivery.attempts,
            error=delivery.last_error,
        )
        await emit(
            sink,
            outcome,
            source=SOURCE,
            customer_id=delivery.customer_id,
            time=now,
            cause_id=delivery.notification_id,
            purpose="failed",
        )

    def _record(self, delivery: Delivery, outcome: str, reason: str | None = None) -> None:
        DELIVERIES.labels(delivery.channel.value, delivery.template, outcome).inc()
        # Ids and reasons only: never the address or the text of the message.
        log.info(
            "notification %s (%s %s, customer %s): %s after %d attempt(s)%s",
            delivery.notification_id,
            delivery.template,
            delivery.channel.value,
            delivery.customer_id,
            outcome,
            delivery.attempts,
            f" ({reason})" if reason else "",
        )


def _failure(error: Exception) -> tuple[str, bool]:
    """What is recorded about a failed send: its kind, never its text, which could quote
    an address or part of the message."""
    if isinstance(error, EmailDeliveryError | HttpDeliveryError):
        return error.reason, error.permanent
    if isinstance(error, templates.UnknownTemplate):
        return "unknown template", True
    if isinstance(error, templates.MissingParam):
        return "template param missing", True
    return type(error).__name__, False


def webhook_payload(delivery: Delivery, partner_id: str, now: datetime) -> dict[str, object]:
    """What a partner is told: ids, the kind of message and its params (points, tiers,
    dates, amounts), never a contact detail. `id` is the same on every attempt, so the
    partner recognises a retried call."""
    return {
        "id": delivery.notification_id,
        "type": delivery.template,
        "partner_id": partner_id,
        "customer_id": delivery.customer_id,
        "cause_event_id": delivery.cause_event_id,
        "created_at": delivery.created_at.isoformat(),
        "sent_at": now.isoformat(),
        "data": {k: v for k, v in delivery.params.items() if k != "earning_ids"},
    }
