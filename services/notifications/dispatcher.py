"""The dispatcher: sends the messages that are due, a batch per transaction.

A batch of due messages is claimed with FOR UPDATE SKIP LOCKED (the transactional lane
first, then the bulk one: domain.lane_of), so several instances share the work without taking
one message twice. What deciding their fate needs is loaded for the whole batch in a few
statements, the decisions are made in memory (domain.decide_batch: the daily cap stays exact
within a batch), the messages to send go out concurrently (a small pool of SMTP connections,
pooled HTTP clients), and every outcome, with its `notification.*` event in the outbox, is
written with multi-row statements in that same transaction, committed right after the sends.
A crash after a server accepted a message but before the commit sends that message again on
the next round: at most the batch in flight (`batch_size`, sent within the last moments
before the crash), with the same Message-ID, derived from the notification id, so that a copy
can be recognised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from prometheus_client import Counter

from services.notifications.adapters.coupons import CouponReader
from services.notifications.adapters.http_channels import (
    HttpDeliveryError,
    OutgoingSms,
    OutgoingWebhook,
    SmsSender,
    WebhookSender,
)
from services.notifications.adapters.sealed_secrets import unseal_sign_in_link
from services.notifications.adapters.smtp import (
    EmailDeliveryError,
    EmailSender,
    InlineImage,
    OutgoingEmail,
)
from services.notifications.domain import templates
from services.notifications.domain.coupons import (
    Coupon,
    CouponLookupError,
    CouponUnavailable,
    check_coupon,
    coupon_of,
    qr_content_id,
    qr_png,
    wait_for_coupon,
)
from services.notifications.domain.model import (
    REQUESTED_TEMPLATES,
    SECRET_PARAMS,
    Channel,
    Decision,
    Delivery,
    DeliveryPolicy,
    DeliveryStatus,
    DispatchReads,
    HarassmentPolicy,
    PartnerWebhook,
    Send,
    Suppress,
    Wait,
    decide_batch,
    guard_secrets,
    judged_day,
    mark_attempt_failed,
    mark_sent,
    mark_suppressed,
    mark_waiting,
)
from services.notifications.ports import DispatchRepository
from shared.clock import Clock
from shared.messaging import events
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink, EventSink, emit
from shared.sealing import SealingError

log = logging.getLogger(__name__)

SOURCE = "notifications"

DELIVERIES = Counter(
    "fedelta_notification_deliveries_total",
    "Delivery attempts by channel, template and outcome",
    ["channel", "template", "outcome"],
)


class OutboxWriter(Protocol):
    """Where a batch's events go, all in one statement (shared.messaging.outbox.Outbox)."""

    async def add_all(self, events: Sequence[tuple[str, str, CloudEvent]]) -> None: ...


@dataclass(frozen=True)
class DispatchUnit:
    """What one dispatch round works with, all on one database transaction."""

    notifications: DispatchRepository
    outbox: OutboxWriter


T = TypeVar("T")


class DispatchTransactions(Protocol):
    """Runs `work` on a unit in one transaction (shared.storage.transactions.in_transaction):
    committed when `work` returns, rolled back when it raises."""

    async def __call__(self, work: Callable[[DispatchUnit], Awaitable[T]]) -> T: ...


@dataclass(frozen=True)
class BatchOutcome:
    """What a batch did: how many messages it decided (sent, retried, waiting or not), how
    many it left due to be decided again (domain.decide_batch), and whether it wrote events."""

    decided: int = 0
    deferred: int = 0
    wrote_events: bool = False


# A batch that deferred messages is followed at once by another; each such batch settles at
# least the send it deferred for, so this bound is only a guard.
MAX_FOLLOW_UPS = 16


@dataclass
class DeliveryDispatcher:
    transactions: DispatchTransactions
    sender: EmailSender
    clock: Clock
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    harassment: HarassmentPolicy = field(default_factory=HarassmentPolicy)
    interval: float = 0.2
    batch_size: int = 50
    # How many sends of a batch are in flight at once, whatever their channel (the SMTP pool
    # and the HTTP clients bound their own connections too).
    concurrency: int = 8
    after_commit: Callable[[], None] | None = None
    # The customer's one-click unsubscribe URL, put in every email when given.
    unsubscribe_url: Callable[[str], str] | None = None
    # None while no SMS provider is configured: SMS messages are then suppressed, saying so.
    sms: SmsSender | None = None
    webhooks: WebhookSender | None = None
    # Where a coupon's code is read when its message goes out (points); None while points'
    # token is not configured: those messages then wait, saying so.
    coupons: CouponReader | None = None
    name: str = "notifications-dispatcher"

    def __post_init__(self) -> None:
        self._stopping = asyncio.Event()

    async def dispatch_due(self) -> int:
        """One round: a batch of due messages, claimed, decided, sent and recorded in one
        transaction; followed at once by another when it deferred some (a customer's cap
        reached only by sends planned in the batch). Returns how many messages it decided."""
        decided = 0
        for _ in range(MAX_FOLLOW_UPS):
            outcome = await self.transactions(self._dispatch_batch)
            if outcome.wrote_events and self.after_commit is not None:
                self.after_commit()
            decided += outcome.decided
            if not outcome.deferred:
                break
        return decided

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                taken = await self.dispatch_due()
                if taken >= self.batch_size:
                    continue  # more may be due right now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)
        finally:
            await self.close()

    async def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        """Closes the senders' kept connections (SMTP pool, HTTP clients)."""
        for sender in (self.sender, self.sms, self.webhooks, self.coupons):
            close = getattr(sender, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    async def _dispatch_batch(self, unit: DispatchUnit) -> BatchOutcome:
        """Claims a batch, decides it, sends what goes out and records every outcome. Safe to
        run again after a lost connection: the claim was rolled back with the rest, and
        email is at-least-once anyway."""
        now = self.clock.now()
        due = await unit.notifications.claim_due(now, self.batch_size)
        if not due:
            return BatchOutcome()
        reads = await self._reads(unit.notifications, due, now)
        available = [c for c in Channel if self._sender_of(c) is not None]
        decided = decide_batch(due, reads, now, self.policy, self.harassment, available)
        to_send = [(d, decision) for d, decision in decided if isinstance(decision, Send)]
        codes = await self._coupon_codes(to_send)
        failures = await self._send_all(to_send, reads, codes, now)
        sent_at = self.clock.now()
        outcomes: list[Delivery] = []
        caused = CollectingSink()
        for delivery, decision in decided:
            if decision is None:
                continue  # deferred: left due, decided again in the next batch
            # A secret it carries (a sign-in link) is not kept once it is settled.
            outcome = guard_secrets(self._outcome(delivery, decision, failures, now, sent_at))
            outcomes.append(outcome)
            await self._emit(outcome, caused, now)
        await unit.notifications.save_all(outcomes)
        await unit.outbox.add_all(caused.events)
        return BatchOutcome(
            decided=len(outcomes),
            deferred=len(decided) - len(outcomes),
            wrote_events=bool(caused.events),
        )

    async def _reads(
        self, notifications: DispatchRepository, due: Sequence[Delivery], now: datetime
    ) -> DispatchReads:
        """What deciding the batch needs, a statement each: contacts, preferences, the
        partners' webhooks, and the sends over each customer's days the batch is judged on."""
        customers = {d.customer_id for d in due}
        contacts = await notifications.contacts_of(customers)
        preferences = await notifications.preferences_of(customers)
        partners = {
            c.partner_id
            for d in due
            if d.channel is Channel.WEBHOOK
            and (c := contacts.get(d.customer_id)) is not None
            and c.partner_id
        }
        webhooks = await notifications.webhooks_of(partners)
        reads = DispatchReads(contacts=contacts, preferences=preferences, webhooks=webhooks)
        spans: dict[str, tuple[datetime, datetime]] = {}
        for delivery in due:
            start, end = judged_day(delivery, reads, now)
            known = spans.get(delivery.customer_id)
            spans[delivery.customer_id] = (
                (min(known[0], start), max(known[1], end)) if known else (start, end)
            )
        sent = await notifications.sent_during(spans)
        return DispatchReads(
            contacts=contacts, preferences=preferences, webhooks=webhooks, sent=sent
        )

    async def _coupon_codes(
        self, to_send: Sequence[tuple[Delivery, Send]]
    ) -> dict[str, Coupon | CouponLookupError]:
        """The coupons the batch's messages carry, read from points, one call per coupon,
        `concurrency` at a time, each bounded by the reader's timeout; by coupon id, the
        coupon or why it could not be had."""
        wanted = sorted({c for d, _ in to_send if (c := coupon_of(d)) is not None})
        if not wanted:
            return {}
        reader = self.coupons
        if reader is None:
            unset = CouponUnavailable("points not configured (no points token)")
            return dict.fromkeys(wanted, unset)
        slots = asyncio.Semaphore(self.concurrency)

        async def one(coupon_id: str) -> tuple[str, Coupon | CouponLookupError]:
            async with slots:
                try:
                    return coupon_id, await reader.coupon(coupon_id)
                except CouponLookupError as error:
                    return coupon_id, error
                except Exception as error:  # its kind only: the text may quote the code
                    return coupon_id, CouponUnavailable(
                        f"points unavailable ({type(error).__name__})"
                    )

        return dict(await asyncio.gather(*(one(c) for c in wanted)))

    async def _send_all(
        self,
        to_send: Sequence[tuple[Delivery, Send]],
        reads: DispatchReads,
        codes: dict[str, Coupon | CouponLookupError],
        now: datetime,
    ) -> dict[str, Exception]:
        """Sends concurrently, `concurrency` at a time; returns the failures by message id. A
        message whose coupon could not be read is not sent: that is its failure."""
        slots = asyncio.Semaphore(self.concurrency)
        failures: dict[str, Exception] = {}

        async def one(delivery: Delivery, send: Send) -> None:
            async with slots:
                try:
                    coupon_id = coupon_of(delivery)
                    found = None if coupon_id is None else codes[coupon_id]
                    if isinstance(found, CouponLookupError):
                        raise found
                    coupon = None if found is None else check_coupon(found, delivery)
                    await self._send(delivery, send, reads.webhook_for(delivery), now, coupon)
                except Exception as error:  # recorded by its kind (_failure)
                    failures[delivery.notification_id] = error

        await asyncio.gather(*(one(delivery, send) for delivery, send in to_send))
        return failures

    def _outcome(
        self,
        delivery: Delivery,
        decision: Decision,
        failures: dict[str, Exception],
        now: datetime,
        sent_at: datetime,
    ) -> Delivery:
        """A message's new state after its decision (and its send, when it went out)."""
        if isinstance(decision, Wait):
            if decision.hold is not None:
                self._record(delivery, "held", decision.hold.value)
            return mark_waiting(delivery, decision.until, decision.hold)
        if isinstance(decision, Suppress):
            self._record(delivery, "suppressed", decision.reason)
            return mark_suppressed(delivery, decision.reason)
        error = failures.get(delivery.notification_id)
        if error is None:
            sent = mark_sent(delivery, sent_at)
            self._record(sent, "sent")
            return sent
        if isinstance(error, CouponLookupError) and not error.permanent:
            # Points is away: never the message's fault, and never sent without its code.
            waiting = wait_for_coupon(delivery, error, now, self.policy)
            self._record(waiting, "retry", error.reason)
            return waiting
        reason, permanent = _failure(error)
        failed = mark_attempt_failed(delivery, reason, now, self.policy, permanent=permanent)
        self._record(
            failed, "failed" if failed.status is DeliveryStatus.FAILED else "retry", reason
        )
        return failed

    async def _emit(self, outcome: Delivery, sink: EventSink, now: datetime) -> None:
        if outcome.status is DeliveryStatus.SENT:
            await self._emit_delivered(outcome, sink, now)
        elif outcome.status is DeliveryStatus.FAILED and outcome.last_error is not None:
            await self._emit_failed(outcome, sink, now)

    def _sender_of(self, channel: Channel) -> object | None:
        if channel is Channel.SMS:
            return self.sms
        if channel is Channel.WEBHOOK:
            return self.webhooks
        return self.sender

    async def _send(
        self,
        delivery: Delivery,
        send: Send,
        webhook: PartnerWebhook | None,
        now: datetime,
        coupon: Coupon | None = None,
    ) -> None:
        if delivery.channel is Channel.SMS:
            assert self.sms is not None
            text = templates.render_sms(delivery.template, send.locale, _params(delivery, coupon))
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
            await self.sender.send(self._email(delivery, send, now, coupon))

    def _email(
        self, delivery: Delivery, send: Send, now: datetime, coupon: Coupon | None = None
    ) -> OutgoingEmail:
        """The email; with a coupon, its code in both parts and its QR code as an image the
        HTML shows inline."""
        # What the member asked for is no mailing to leave: no unsubscribe link.
        unsubscribe = (
            self.unsubscribe_url(delivery.customer_id)
            if self.unsubscribe_url and delivery.template not in REQUESTED_TEMPLATES
            else None
        )
        images: tuple[InlineImage, ...] = ()
        if coupon is not None:
            qr = InlineImage(
                qr_content_id(delivery.notification_id), qr_png(coupon.code), filename="coupon.png"
            )
            images = (qr,)
        message = templates.render(
            delivery.template,
            send.locale,
            _params(delivery, coupon),
            unsubscribe_url=unsubscribe,
            qr_src=f"cid:{images[0].content_id}" if images else None,
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
            images=images,
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


def _params(delivery: Delivery, coupon: Coupon | None) -> dict[str, object]:
    """What the message is rendered with: its stored params, its coupon's code (read at send
    time, never stored), and its sign-in link's URL (stored sealed, opened at send time)."""
    params = delivery.params if coupon is None else {**delivery.params, "code": coupon.code}
    sealed = params.get("link")
    if isinstance(sealed, str):
        params = {**params, "url": unseal_sign_in_link(delivery.notification_id, sealed)}
    return params


def _failure(error: Exception) -> tuple[str, bool]:
    """What is recorded about a failed send: its kind, never its text, which could quote
    an address or part of the message."""
    if isinstance(error, EmailDeliveryError | HttpDeliveryError):
        return error.reason, error.permanent
    if isinstance(error, CouponLookupError):
        return error.reason, error.permanent
    if isinstance(error, templates.UnknownTemplate):
        return "unknown template", True
    if isinstance(error, templates.MissingParam):
        return "template param missing", True
    if isinstance(error, SealingError):
        # The key it was sealed with is not configured here: no retry opens it.
        return "sealed param does not open", True
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
        "data": {
            k: v
            for k, v in delivery.params.items()
            if k != "earning_ids" and k not in SECRET_PARAMS
        },
    }
