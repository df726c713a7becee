"""In-memory stand-ins for the notifications database and mail server, typed against the
service's ports so that mypy checks they keep up with them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from services.notifications import ports
from services.notifications.adapters.coupons import CouponReader
from services.notifications.adapters.smtp import EmailDeliveryError, OutgoingEmail
from services.notifications.dispatcher import DispatchUnit
from services.notifications.domain.coupons import Coupon, UnknownCoupon
from services.notifications.domain.model import (
    PERSONAL_CHANNELS,
    POINTS_EARNED_DIGEST,
    WIN_BACK,
    Contact,
    Delivery,
    DeliveryStatus,
    Hold,
    PartnerWebhook,
    Preferences,
    PurchaseActivity,
    SentMessage,
    counts_against_cap,
    covered_by_offer,
    lane_of,
    without_secrets,
)
from services.notifications.domain.win_back_offers import SUPERSEDED
from shared.messaging import events
from shared.messaging.events import CloudEvent, new_event
from shared.messaging.outbox import CollectingSink

NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)

T = TypeVar("T")


class FakeNotifications(ports.ConsumerRepository, ports.DispatchRepository, ports.ApiRepository):
    def __init__(self) -> None:
        self.contacts: dict[str, Contact] = {}
        self.chosen: dict[str, Preferences] = {}
        self.deliveries: dict[str, Delivery] = {}
        self.last_purchases: dict[str, datetime] = {}
        # purchase_activity.win_back_for: the last purchase each customer's win-back was for.
        self.won_back: dict[str, datetime] = {}
        self.webhooks: dict[str, PartnerWebhook] = {}
        self.statements = 0  # set-based writes, as the SQL repository would issue them
        self.claims = 0
        # Messages another (imagined) dispatcher holds: claim_due skips them (SKIP LOCKED).
        self.locked: set[str] = set()

    async def upsert_contacts(self, contacts: Collection[Contact]) -> None:
        customer_ids = [c.customer_id for c in contacts]
        # PostgreSQL refuses to upsert one row twice in a statement: so does the fake.
        assert len(set(customer_ids)) == len(customer_ids), "one profile per customer"
        self.statements += 1
        for contact in contacts:
            current = self.contacts.get(contact.customer_id)
            if current is None or contact.supersedes(current):
                self.contacts[contact.customer_id] = contact

    async def delete_contacts(self, customer_ids: Collection[str]) -> None:
        self.statements += 1
        for customer_id in customer_ids:
            self.contacts.pop(customer_id, None)
            self.chosen.pop(customer_id, None)
            self.last_purchases.pop(customer_id, None)
            self.won_back.pop(customer_id, None)

    async def record_purchases(self, last_purchase_at: Mapping[str, datetime]) -> None:
        # Counted only when there is something to record: batches without purchases cost
        # what they did before purchases were recorded.
        self.statements += 1 if last_purchase_at else 0
        for customer_id, occurred_at in last_purchase_at.items():
            current = self.last_purchases.get(customer_id)
            if current is None or current < occurred_at:
                self.last_purchases[customer_id] = occurred_at

    async def cover_lapses(self, offers: Mapping[str, datetime]) -> None:
        if not offers:
            return
        self.statements += 2
        for customer_id, starts_at in offers.items():
            last = self.last_purchases.get(customer_id)
            if last is None:
                continue
            activity = PurchaseActivity(customer_id, last, self.won_back.get(customer_id))
            covered = covered_by_offer(activity, starts_at)
            if covered is not None:
                self.won_back[customer_id] = covered
        for delivery in list(self.deliveries.values()):
            if (
                delivery.customer_id in offers
                and delivery.template == WIN_BACK
                and delivery.status is DeliveryStatus.SCHEDULED
            ):
                self.deliveries[delivery.notification_id] = replace(
                    delivery, status=DeliveryStatus.SUPPRESSED, last_error=SUPERSEDED
                )

    def activity(self, customer_id: str) -> PurchaseActivity:
        """The customer's purchase_activity row, as the win-back job reads it."""
        return PurchaseActivity(
            customer_id, self.last_purchases[customer_id], self.won_back.get(customer_id)
        )

    async def contact(self, customer_id: str) -> Contact | None:
        return self.contacts.get(customer_id)

    async def preferences(self, customer_id: str) -> Preferences | None:
        return self.chosen.get(customer_id)

    async def preferences_of(self, customer_ids: Collection[str]) -> dict[str, Preferences]:
        self.statements += 1
        return {c: self.chosen[c] for c in customer_ids if c in self.chosen}

    async def webhooks_of(self, partner_ids: Collection[str]) -> dict[str, PartnerWebhook]:
        self.statements += 1
        return {p: self.webhooks[p] for p in partner_ids if p in self.webhooks}

    async def sent_during(
        self, spans: Mapping[str, tuple[datetime, datetime]]
    ) -> dict[str, list[SentMessage]]:
        self.statements += 1
        sent: dict[str, list[SentMessage]] = {}
        for d in self.deliveries.values():
            span = spans.get(d.customer_id)
            if (
                span is not None
                and d.status is DeliveryStatus.SENT
                and d.sent_at is not None
                and span[0] <= d.sent_at < span[1]
                and d.channel in PERSONAL_CHANNELS
                and counts_against_cap(d.template)
            ):
                sent.setdefault(d.customer_id, []).append(SentMessage(d.cause_event_id, d.sent_at))
        return sent

    async def webhook(self, partner_id: str) -> PartnerWebhook | None:
        return self.webhooks.get(partner_id)

    async def contacts_of(self, customer_ids: Collection[str]) -> dict[str, Contact]:
        self.statements += 1
        return {c: self.contacts[c] for c in customer_ids if c in self.contacts}

    async def partners_with_webhooks(self, partner_ids: Collection[str]) -> set[str]:
        self.statements += 1
        return {p for p in partner_ids if p in self.webhooks}

    async def schedule(self, deliveries: Collection[Delivery]) -> set[str]:
        self.statements += 1
        new: set[str] = set()
        for delivery in deliveries:
            cause = (delivery.cause_event_id, delivery.channel, delivery.template)
            if delivery.notification_id in self.deliveries or any(
                (d.cause_event_id, d.channel, d.template) == cause for d in self.deliveries.values()
            ):
                continue
            self.deliveries[delivery.notification_id] = delivery
            new.add(delivery.notification_id)
        return new

    async def claim_due(self, now: datetime, limit: int) -> list[Delivery]:
        due = [
            d
            for d in self.deliveries.values()
            if d.status is DeliveryStatus.SCHEDULED
            and d.next_attempt_at <= now
            and d.notification_id not in self.locked
        ]
        self.claims += 1
        # The transactional lane first, each lane in due order (stable: oldest first on ties).
        ordered = sorted(
            sorted(due, key=lambda d: d.created_at),
            key=lambda d: (lane_of(d.template), d.next_attempt_at),
        )
        return ordered[:limit]

    async def save_all(self, deliveries: Collection[Delivery]) -> None:
        if not deliveries:
            return
        self.statements += 1
        for delivery in deliveries:
            assert delivery.notification_id in self.deliveries
            self.deliveries[delivery.notification_id] = delivery

    async def suppress_scheduled(self, customer_ids: Collection[str], reason: str) -> int:
        self.statements += 1
        waiting = [
            d
            for d in self.deliveries.values()
            if d.customer_id in customer_ids and d.status is DeliveryStatus.SCHEDULED
        ]
        for delivery in waiting:
            self.deliveries[delivery.notification_id] = without_secrets(
                replace(delivery, status=DeliveryStatus.SUPPRESSED, last_error=reason)
            )
        return len(waiting)

    async def open_digests(self, customer_ids: Collection[str], now: datetime) -> list[Delivery]:
        self.statements += 1
        newest: dict[str, Delivery] = {}
        for d in sorted(self.deliveries.values(), key=lambda d: d.created_at, reverse=True):
            if (
                d.customer_id in customer_ids
                and d.template == POINTS_EARNED_DIGEST
                and d.status is DeliveryStatus.SCHEDULED
                and d.attempts == 0
                and d.hold is Hold.DIGEST_WINDOW
                and d.released_as_of is None
                and d.next_attempt_at > now
            ):
                newest.setdefault(d.customer_id, d)
        return list(newest.values())

    async def update_digests(self, digests: Collection[Delivery]) -> None:
        if not digests:
            return
        self.statements += 1
        for digest in digests:
            stored = self.deliveries[digest.notification_id]
            if stored.status is DeliveryStatus.SCHEDULED:
                self.deliveries[digest.notification_id] = replace(stored, params=digest.params)

    async def deliveries_by_id(self, notification_ids: Collection[str]) -> dict[str, Delivery]:
        if not notification_ids:
            return {}
        self.statements += 1
        return {i: self.deliveries[i] for i in notification_ids if i in self.deliveries}

    async def save_preferences(self, chosen: Preferences) -> None:
        self.chosen[chosen.customer_id] = chosen

    async def register_webhook(self, webhook: PartnerWebhook, now: datetime) -> bool:
        current = self.webhooks.get(webhook.partner_id)
        if current is None:
            self.webhooks[webhook.partner_id] = replace(webhook, created_at=now)
            return True
        self.webhooks[webhook.partner_id] = replace(current, url=webhook.url)
        return False

    async def remove_webhook(self, partner_id: str) -> bool:
        return self.webhooks.pop(partner_id, None) is not None

    async def deliveries_for(self, customer_id: str, limit: int) -> list[Delivery]:
        mine = [d for d in self.deliveries.values() if d.customer_id == customer_id]
        return sorted(mine, key=lambda d: d.created_at, reverse=True)[:limit]

    async def customers_with_email(self, email: str, limit: int) -> list[str]:
        return sorted(
            c.customer_id
            for c in self.contacts.values()
            if c.email is not None and c.email.lower() == email.lower()
        )[:limit]

    async def is_known(self, customer_id: str) -> bool:
        return customer_id in self.contacts or any(
            d.customer_id == customer_id for d in self.deliveries.values()
        )

    def only(self) -> Delivery:
        (delivery,) = self.deliveries.values()
        return delivery


class FakeSender:
    """Accepts every message, or fails with `failure` while it is set."""

    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []
        self.failure: EmailDeliveryError | None = None
        self.attempts = 0

    async def send(self, email: OutgoingEmail) -> None:
        self.attempts += 1
        if self.failure is not None:
            raise self.failure
        self.sent.append(email)


class AllAtOnce:
    """The outbox as the dispatcher writes it (add_all, one statement per batch), into a
    CollectingSink."""

    def __init__(self, sink: CollectingSink) -> None:
        self.sink = sink
        self.statements = 0

    async def add_all(self, events: Sequence[tuple[str, str, CloudEvent]]) -> None:
        if events:
            self.statements += 1
        self.sink.events.extend(events)


class FakeUnits:
    """Hands the dispatcher the same fakes for every transaction, counting commits: a
    dispatcher.DispatchTransactions."""

    def __init__(self, notifications: FakeNotifications, sink: CollectingSink) -> None:
        self.notifications = notifications
        self.sink = sink
        self.outbox = AllAtOnce(sink)
        self.commits = 0

    async def __call__(self, work: Callable[[DispatchUnit], Awaitable[T]]) -> T:
        done = await work(DispatchUnit(notifications=self.notifications, outbox=self.outbox))
        self.commits += 1
        return done


def enrolled(
    customer_id: str = "c1",
    *,
    email: str | None = "ada@example.com",
    consent_email: bool = True,
    locale: str = "en",
    event_id: str | None = None,
    version: int | None = None,
) -> CloudEvent:
    return new_event(
        events.CustomerEnrolled(
            customer_id=customer_id,
            partner_id="demo",
            enrolled_at=NOW,
            locale=locale,
            email=email,
            consent=events.Consent(email=consent_email),
            version=version,
        ),
        source="ingest/demo",
        subject=customer_id,
        time=NOW,
        event_id=event_id,
    )


def tier_changed(
    customer_id: str = "c1", *, to_tier: events.TierName = "gold", direction: str = "up"
) -> CloudEvent:
    return new_event(
        events.TierChanged.model_validate(
            {
                "customer_id": customer_id,
                "from_tier": "silver",
                "to_tier": to_tier,
                "direction": direction,
                "reason": "qualifying spend",
                "effective_at": NOW,
                "review_at": NOW.replace(year=NOW.year + 1),
            }
        ),
        source="tiers",
        subject=customer_id,
        time=NOW,
    )


def erased_event(customer_id: str = "c1") -> CloudEvent:
    return new_event(
        events.CustomerErased(customer_id=customer_id),
        source="ingest/demo",
        subject=customer_id,
        time=NOW,
    )


class FakeCoupons(CouponReader):
    """Points' coupons as the dispatcher reads them: `coupons` by id, `failures` by id (an
    error raised instead), anything else unknown (404). Counts the calls per coupon and the
    most calls in flight at once (each call yields to the loop `delay` seconds)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.coupons: dict[str, Coupon] = {}
        self.failures: dict[str, Exception] = {}
        self.calls: list[str] = []
        self.delay = delay
        self.in_flight = 0
        self.most_in_flight = 0

    def add(
        self, coupon_id: str, customer_id: str, code: str, expires_at: datetime | None = None
    ) -> Coupon:
        coupon = Coupon(
            coupon_id=coupon_id,
            customer_id=customer_id,
            code=code,
            status="issued",
            expires_at=expires_at or NOW + timedelta(days=30),
        )
        self.coupons[coupon_id] = coupon
        return coupon

    async def coupon(self, coupon_id: str) -> Coupon:
        self.calls.append(coupon_id)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        failure = self.failures.get(coupon_id)
        if failure is not None:
            raise failure
        if coupon_id not in self.coupons:
            raise UnknownCoupon("unknown coupon (points answered 404)")
        return self.coupons[coupon_id]
