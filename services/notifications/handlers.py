"""What notifications does with a batch of the events it consumes: plain functions, side
effects injected.

Handlers only record contacts and schedule messages, in the consumer's transaction; sending
is the dispatcher's job, outside it, so a slow mail server never holds up the topics.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from services.notifications.domain import feedback as feedback_rules
from services.notifications.domain.coupons import REDEMPTION_CONFIRMED, coupon_params
from services.notifications.domain.engagement import (
    BADGE_EARNED,
    CHALLENGE_COMPLETED,
    STAMP_CARD_COMPLETED,
    badge_params,
    challenge_params,
    granted_params,
    reward_params,
    reward_template,
    stamp_card_params,
)
from services.notifications.domain.model import (
    POINTS_EARNED_DIGEST,
    POINTS_EXPIRING,
    WIN_BACK_OFFER,
    Channel,
    Contact,
    Delivery,
    DeliveryStatus,
    Hold,
    channels_for,
    expiry_warning_params,
    expiry_warning_send_at,
    expiry_window,
    merge_earning,
    merge_expiry_warning,
    schedule,
    time_zone_of,
)
from services.notifications.domain.win_back_offers import offer_params
from services.notifications.ports import ConsumerRepository
from shared.messaging import events
from shared.messaging.events import CloudEvent, derived_event_id
from shared.messaging.outbox import EventSink

log = logging.getLogger(__name__)

SOURCE = "notifications"
ERASED = "customer erased"


DEFAULT_DIGEST_WINDOW = timedelta(minutes=10)
DEFAULT_WELCOME_WINDOW = timedelta(days=7)
WELCOME = "welcome"
# Expiry warnings are merged per customer and window of this many local days...
DEFAULT_EXPIRY_WINDOW_DAYS = 1
# ...and wait this long past the last lot of the window's own warning time: points' jobs
# interval (1 h), warning each lot at the first run within its lead, and a margin.
DEFAULT_EXPIRY_HOLD = timedelta(minutes=65)
# The reason points and tiers give what an import brought over (`fedelta import members`,
# product §11): an imported member's opening lots and opening tier. Not news to the member,
# so no message: they hear of it only through the welcome, when the import asked for it.
IMPORT = "import"


def welcome_id(customer_id: str, channel: Channel) -> str:
    """The welcome's id comes from the customer, not from the event that caused it: whichever
    profile event notifications sees first (the enrolment, or an update when the enrolment
    was compacted away), and whatever it sees after, a customer is welcomed once per channel.

    Welcomes stored before this rule carry ids derived from their enrolment event. That is
    safe: an event already applied is never applied again (the inbox, in the same
    transaction, deduplicates it), and an update or a late enrolment for a customer with a
    stored contact is not their first profile, so it welcomes no one."""
    return derived_event_id(f"customer/{customer_id}", f"{WELCOME}/{channel.value}")


def expiry_warning_id(customer_id: str, first_day: date, days: int, channel: Channel) -> str:
    """The merged expiry warning's id comes from the customer and the window, so that every
    lot's warning of the window, in this batch or a later one, finds the same message."""
    window = f"{first_day.isoformat()}/{days}d"
    return derived_event_id(f"customer/{customer_id}", f"{POINTS_EXPIRING}/{window}/{channel}")


def achievement_id(customer_id: str, challenge_id: str, channel: Channel) -> str:
    """The one message of a challenge met, per channel: `challenge_completed` and
    `badge_earned` share it, so a member told of the challenge (which names its badge) is not
    told of the badge again, whichever event comes first and in whatever batch
    (domain/engagement.py)."""
    return derived_event_id(f"customer/{customer_id}", f"challenge/{challenge_id}/{channel}")


@dataclass(frozen=True)
class Context:
    notifications: ConsumerRepository
    sink: EventSink
    now: datetime
    # Earnings that arrive within this window of the first one go out as one digest.
    digest_window: timedelta = DEFAULT_DIGEST_WINDOW
    # The program's currency (ISO 4217): what the amounts in the events are in.
    currency: str = "EUR"
    # A customer first seen through an update is welcomed when enrolled this recently.
    welcome_window: timedelta = DEFAULT_WELCOME_WINDOW
    # Expiry warnings of one customer's window of local days go out as one message.
    expiry_window_days: int = DEFAULT_EXPIRY_WINDOW_DAYS
    expiry_hold: timedelta = DEFAULT_EXPIRY_HOLD
    # How long after a purchase its member is invited to give feedback; None: never.
    feedback_request_delay: timedelta | None = None


@dataclass
class Changes:
    """What a batch does to the database, worked out in memory in the events' order, so an
    event sees the effect of the earlier events of its customer in the same batch."""

    now: datetime
    digest_window: timedelta = DEFAULT_DIGEST_WINDOW
    currency: str = "EUR"
    welcome_window: timedelta = DEFAULT_WELCOME_WINDOW
    expiry_window_days: int = DEFAULT_EXPIRY_WINDOW_DAYS
    expiry_hold: timedelta = DEFAULT_EXPIRY_HOLD
    feedback_request_delay: timedelta | None = None
    # The points digest still gathering earnings, per customer: loaded for the batch, or
    # started by it. Those loaded and changed are rewritten in `write`.
    digests: dict[str, Delivery] = field(default_factory=dict)
    merged_digests: set[str] = field(default_factory=set)
    # The profile to store per customer: the newest one seen since their last erasure (the
    # highest version; by time only between profiles from before versions existed).
    contacts: dict[str, Contact] = field(default_factory=dict)
    # Customers whose stored contact is deleted and whose waiting messages are suppressed,
    # before anything this batch stores after their erasure.
    erased: set[str] = field(default_factory=set)
    deliveries: dict[str, list[Delivery]] = field(default_factory=dict)
    # The latest purchase time seen per customer since their last erasure: the win-back
    # job's measure of a lapse.
    last_purchases: dict[str, datetime] = field(default_factory=dict)
    # Per customer told of a win-back offer, the latest offer's start: the lapse it is for
    # is marked as won back once the batch's purchases are recorded (domain.covered_by_offer).
    offers: dict[str, datetime] = field(default_factory=dict)
    # The contacts stored before the batch, and the partners with a webhook: which channels
    # a message goes out on besides email (SMS with consent and a phone; the partner's
    # webhook when it has one). Consent is checked again at send time.
    stored_contacts: dict[str, Contact] = field(default_factory=dict)
    partners_with_webhooks: set[str] = field(default_factory=set)
    # The merged expiry warnings of the batch's windows, by id: loaded (locked) for the batch,
    # or started by it. Those loaded and changed are rewritten in `write`; a warning whose
    # window's message was already attempted is late: counted, and not told again.
    expiry_warnings: dict[str, Delivery] = field(default_factory=dict)
    merged_warnings: set[str] = field(default_factory=set)
    late_warnings: set[str] = field(default_factory=set)

    def is_known(self, customer_id: str) -> bool:
        """Whether notifications holds a profile of the customer: stored before the batch or
        kept earlier in it. An erasure forgets it, in a batch as across batches, so that a
        batch ends as its events applied one by one would."""
        return customer_id in self.stored_contacts or customer_id in self.contacts

    def welcome(self, cause: CloudEvent, customer_id: str) -> None:
        """The welcome, on every channel the customer is reachable on; its ids come from the
        customer, so a second attempt (in a later batch too) is the same message: an erased
        customer welcomed before is never welcomed again (and by contract nothing but a
        tombstone follows an erasure: ingest refuses an erased id)."""
        waiting = {d.notification_id for d in self.deliveries.get(customer_id, [])}
        for channel in self.channels(customer_id):
            notification_id = welcome_id(customer_id, channel)
            if notification_id in waiting:
                continue  # already in this batch: one row per id in the set-based write
            self.schedule(
                cause,
                customer_id,
                WELCOME,
                channel=channel,
                notification_id=notification_id,
            )

    def channels(self, customer_id: str) -> list[Channel]:
        contact = self.contacts.get(customer_id) or self.stored_contacts.get(customer_id)
        return channels_for(contact, self.partners_with_webhooks)

    def notify(
        self,
        cause: CloudEvent,
        customer_id: str,
        template: str,
        params: dict[str, Any] | None = None,
    ) -> None:
        """One message per channel the customer is reachable on for this event."""
        for channel in self.channels(customer_id):
            self.schedule(cause, customer_id, template, params, channel)

    def achieve(
        self,
        cause: CloudEvent,
        customer_id: str,
        challenge_id: str,
        template: str,
        params: dict[str, Any],
    ) -> None:
        """The message of a challenge met, on every channel, under its one id per challenge
        (achievement_id): a badge's is dropped when the challenge's is already in the batch,
        and the challenge's, naming the badge, replaces a badge's still in it."""
        waiting = self.deliveries.setdefault(customer_id, [])
        for channel in self.channels(customer_id):
            notification_id = achievement_id(customer_id, challenge_id, channel)
            at = next(
                (i for i, d in enumerate(waiting) if d.notification_id == notification_id), None
            )
            if at is None:
                self.schedule(
                    cause,
                    customer_id,
                    template,
                    params,
                    channel=channel,
                    notification_id=notification_id,
                )
            elif template == CHALLENGE_COMPLETED and waiting[at].template == BADGE_EARNED:
                waiting[at] = replace(
                    waiting[at], template=template, params=params, cause_event_id=cause.id
                )

    def bought(self, customer_id: str, occurred_at: datetime) -> None:
        current = self.last_purchases.get(customer_id)
        if current is None or current < occurred_at:
            self.last_purchases[customer_id] = occurred_at

    def offer_win_back(self, cause: CloudEvent, offer: events.PointsOfferGranted) -> None:
        """The offer's message on every channel (its id derives from the event), and the lapse
        it is for remembered, so that the win-back job tells no plain win-back of it."""
        customer_id = offer.customer_id
        params = offer_params(
            offer_id=offer.offer_id,
            name=offer.name,
            multiplier=offer.multiplier,
            bonus=offer.bonus,
            starts_at=offer.starts_at,
            ends_at=offer.ends_at,
            zone=self.zone_of(customer_id),
        )
        self.notify(cause, customer_id, WIN_BACK_OFFER, params)
        current = self.offers.get(customer_id)
        if current is None or current < offer.starts_at:
            self.offers[customer_id] = offer.starts_at

    def invite_feedback(self, cause: CloudEvent, purchase: events.PurchaseCompleted) -> None:
        """The purchase's invitation to give feedback, by email, once per purchase, the
        configured delay after it (domain/feedback.py); nothing when the delay is off."""
        customer_id = purchase.customer_id
        contact = self.contacts.get(customer_id) or self.stored_contacts.get(customer_id)
        # Only members who can be emailed now (consent is checked again at send time): an
        # invitation per purchase suppressed at once would only fill the delivery log.
        if self.feedback_request_delay is None or not (
            contact and contact.email and contact.consent_email
        ):
            return
        on = feedback_rules.purchased_on(purchase.occurred_at, self.zone_of(customer_id))
        self.schedule(
            cause,
            customer_id,
            feedback_rules.FEEDBACK_REQUEST,
            {"purchased_on": on.isoformat(), "partner_id": purchase.partner_id},
            Channel.EMAIL,
            send_at=feedback_rules.request_at(
                purchase.occurred_at, self.now, self.feedback_request_delay
            ),
            notification_id=feedback_rules.feedback_request_id(
                purchase.partner_id, purchase.purchase_id
            ),
        )

    def keep_profile(self, contact: Contact) -> None:
        current = self.contacts.get(contact.customer_id)
        if current is None or contact.supersedes(current):
            self.contacts[contact.customer_id] = contact

    def schedule(
        self,
        cause: CloudEvent,
        customer_id: str,
        template: str,
        params: dict[str, Any] | None = None,
        channel: Channel = Channel.EMAIL,
        send_at: datetime | None = None,
        hold: Hold | None = None,
        notification_id: str | None = None,
    ) -> Delivery:
        delivery = schedule(
            notification_id=notification_id
            or derived_event_id(cause.id, f"{template}/{channel.value}"),
            customer_id=customer_id,
            channel=channel,
            template=template,
            cause_event_id=cause.id,
            now=self.now,
            params=params,
            send_at=send_at,
            hold=hold,
        )
        self.deliveries.setdefault(customer_id, []).append(delivery)
        return delivery

    def earn(self, cause: CloudEvent, customer_id: str, points: int) -> None:
        """Merges the earning into the customer's open digest, or opens one that waits for
        the window to close so that the earnings after it can join."""
        open_digest = self.digests.get(customer_id)
        if open_digest is not None and open_digest.status is DeliveryStatus.SCHEDULED:
            merged = merge_earning(open_digest, cause.id, points)
            self.digests[customer_id] = merged
            self._replace(merged)
            return
        self.digests[customer_id] = self.schedule(
            cause,
            customer_id,
            POINTS_EARNED_DIGEST,
            {"points": points, "earnings": 1, "earning_ids": [cause.id]},
            send_at=self.now + self.digest_window,
            hold=Hold.DIGEST_WINDOW,
        )

    def zone_of(self, customer_id: str) -> ZoneInfo:
        """The customer's time zone as known now (UTC while no profile has arrived)."""
        contact = self.contacts.get(customer_id) or self.stored_contacts.get(customer_id)
        return time_zone_of(contact, None)

    def warn_expiry(self, cause: CloudEvent, customer_id: str, points: int, at: datetime) -> None:
        """Merges a lot's warning into its window's message on every channel, or starts that
        message, waiting until the window's other lots have been warned of too."""
        zone = self.zone_of(customer_id)
        window = expiry_window(at, zone, self.expiry_window_days)
        for channel in self.channels(customer_id):
            notification_id = expiry_warning_id(customer_id, window.first_day, window.days, channel)
            current = self.expiry_warnings.get(notification_id)
            if current is None:
                self.expiry_warnings[notification_id] = self.schedule(
                    cause,
                    customer_id,
                    POINTS_EXPIRING,
                    expiry_warning_params(cause.id, points, at, zone),
                    channel=channel,
                    send_at=expiry_warning_send_at(self.now, at, window, self.expiry_hold),
                    hold=Hold.DIGEST_WINDOW,
                    notification_id=notification_id,
                )
            elif current.status is DeliveryStatus.SCHEDULED and current.attempts == 0:
                merged = merge_expiry_warning(current, cause.id, points, at, zone)
                self.expiry_warnings[notification_id] = merged
                self._replace(merged, self.merged_warnings)
            elif cause.id not in current.params.get("warning_ids", []):
                self.late_warnings.add(cause.id)

    def _replace(self, digest: Delivery, merged: set[str] | None = None) -> None:
        waiting = self.deliveries.get(digest.customer_id, [])
        for index, delivery in enumerate(waiting):
            if delivery.notification_id == digest.notification_id:
                waiting[index] = digest
                return
        (self.merged_digests if merged is None else merged).add(digest.notification_id)

    def erase(self, customer_id: str) -> None:
        self.contacts.pop(customer_id, None)
        self.stored_contacts.pop(customer_id, None)
        self.last_purchases.pop(customer_id, None)
        self.offers.pop(customer_id, None)
        self.erased.add(customer_id)
        waiting = self.deliveries.get(customer_id)
        digest = self.digests.pop(customer_id, None)
        if digest is not None:
            self.merged_digests.discard(digest.notification_id)
        self.merged_warnings -= {
            i for i, d in self.expiry_warnings.items() if d.customer_id == customer_id
        }
        if waiting:
            self.deliveries[customer_id] = [
                replace(d, status=DeliveryStatus.SUPPRESSED, last_error=ERASED)
                if d.status is DeliveryStatus.SCHEDULED
                else d
                for d in waiting
            ]

    async def write(self, notifications: ConsumerRepository) -> set[str]:
        """Erasures first, so that they reach only what existed before them; returns the ids
        of the messages that were new."""
        if self.erased:
            await notifications.delete_contacts(self.erased)
            await notifications.suppress_scheduled(self.erased, ERASED)
        scheduled = await notifications.schedule(
            [d for per_customer in self.deliveries.values() for d in per_customer]
        )
        await notifications.update_digests(
            [d for d in self.digests.values() if d.notification_id in self.merged_digests]
            + [self.expiry_warnings[i] for i in sorted(self.merged_warnings)]
        )
        await notifications.upsert_contacts(list(self.contacts.values()))
        await notifications.record_purchases(self.last_purchases)
        await notifications.cover_lapses(self._new_offers(scheduled))
        return scheduled

    def _new_offers(self, scheduled: set[str]) -> dict[str, datetime]:
        """The offers whose message is new: a replayed one (its inbox claim purged) must not
        suppress the plain win-back of a later lapse."""
        told = {
            d.customer_id
            for per_customer in self.deliveries.values()
            for d in per_customer
            if d.template == WIN_BACK_OFFER and d.notification_id in scheduled
        }
        return {c: at for c, at in self.offers.items() if c in told}


def customer_enrolled(cause: CloudEvent, changes: Changes) -> None:
    profile = cause.data_as(events.CustomerEnrolled)
    # A customer is welcomed at the first profile notifications sees of them: an enrolment
    # arriving after an update (a replay, or a late copy) is not their first.
    first_seen = not changes.is_known(profile.customer_id)
    changes.keep_profile(_contact(profile, cause))
    # An imported member is welcomed only when the import asked for it (`--welcome`).
    if first_seen and profile.welcome:
        # Scheduled whatever the consent: the decision is taken at send time, on the contact
        # as it is then, and a suppressed message stays visible in the delivery log.
        changes.welcome(cause, profile.customer_id)


def customer_updated(cause: CloudEvent, changes: Changes) -> None:
    profile = cause.data_as(events.CustomerUpdated)
    # The customers topic is compacted: a consumer starting afresh or lagging past a segment
    # roll may find only a customer's latest profile, never their enrolment. A customer first
    # seen that way is welcomed if they enrolled recently, measured against the event's own
    # time (not the clock), so a replay of old history welcomes no long-standing customer.
    first_seen = not changes.is_known(profile.customer_id)
    changes.keep_profile(_contact(profile, cause))
    if first_seen and profile.enrolled_at >= cause.time - changes.welcome_window:
        changes.welcome(cause, profile.customer_id)


def customer_erased(cause: CloudEvent, changes: Changes) -> None:
    changes.erase(cause.data_as(events.CustomerErased).customer_id)


def tier_changed(cause: CloudEvent, changes: Changes) -> None:
    change = cause.data_as(events.TierChanged)
    if change.reason == IMPORT:
        return  # the tier the member held in the program they come from
    template = "tier_up" if change.direction == "up" else "tier_down"
    params: dict[str, Any] = {"tier": change.to_tier, "from_tier": change.from_tier}
    if change.next_tier is not None and change.next_tier_match is not None:
        # A program with tiers reached by referrals or visits: the way on, by each route.
        params |= _route_params(
            change.amount_to_next_tier,
            change.referrals_to_next_tier,
            change.visits_to_next_tier,
            change.next_tier_match,
            changes.currency,
        )
        params["next_tier"] = change.next_tier
    changes.notify(cause, change.customer_id, template, params)


def tier_downgrade_warning(cause: CloudEvent, changes: Changes) -> None:
    warning = cause.data_as(events.TierDowngradeWarning)
    params: dict[str, Any] = {
        "tier": warning.tier,
        "would_become": warning.would_become,
        "review_at": warning.review_at.isoformat(),
        "amount_to_keep_tier": str(warning.amount_to_keep_tier),
        "currency": changes.currency,
    }
    if warning.keep_match is not None:
        # A program with tiers reached by referrals or visits: what keeps it, by each route.
        params |= _route_params(
            warning.amount_to_keep_tier if warning.keep_by_spend is not False else None,
            warning.referrals_to_keep_tier,
            warning.visits_to_keep_tier,
            warning.keep_match,
            changes.currency,
        )
    changes.notify(cause, warning.customer_id, "tier_downgrade_warning", params)


def _route_params(
    amount: Decimal | None, referrals: int | None, visits: int | None, match: str, currency: str
) -> dict[str, Any]:
    """The tier templates' `route_*` params: each route's gap (a route the tier does not
    have, or one already met, is left out) and whether any or all must be met."""
    params: dict[str, Any] = {"route_match": match, "currency": currency}
    if amount:
        params["route_amount"] = str(amount)
    if referrals:
        params["route_referrals"] = referrals
    if visits:
        params["route_visits"] = visits
    return params


def points_earned(cause: CloudEvent, changes: Changes) -> None:
    earning = cause.data_as(events.PointsEarned)
    if earning.reason == IMPORT:
        return  # an opening balance, carried over: not earned, and not in the digest
    changes.earn(cause, earning.customer_id, earning.points)


def points_redeemed(cause: CloudEvent, changes: Changes) -> None:
    redemption = cause.data_as(events.PointsRedeemed)
    if redemption.reward_id is not None:
        # A reward of the catalogue: its coupon's message follows (coupon.issued, emitted by
        # points in the same transaction, after this event on the customer's partition).
        return
    changes.notify(
        cause,
        redemption.customer_id,
        REDEMPTION_CONFIRMED,
        {"points": redemption.points, "reward": redemption.reward},
    )


def coupon_issued(cause: CloudEvent, changes: Changes) -> None:
    # The coupon's id, never its code: the dispatcher reads the code from points when it
    # sends the message (dispatcher.DeliveryDispatcher.coupons).
    issued = cause.data_as(events.CouponIssued)
    params = coupon_params(
        coupon_id=issued.coupon_id,
        reward_id=issued.reward_id,
        reward=issued.reward,
        points=issued.points,
        expires_at=issued.expires_at,
        zone=changes.zone_of(issued.customer_id),
        gift=issued.grant_id is not None,  # engagement's reward: a gift's words
    )
    changes.notify(cause, issued.customer_id, REDEMPTION_CONFIRMED, params)


def stamp_card_completed(cause: CloudEvent, changes: Changes) -> None:
    card = cause.data_as(events.StampCardCompleted)
    params = stamp_card_params(
        card_id=card.card_id,
        name=card.name,
        stamps_required=card.stamps_required,
        completed_count=card.completed_count,
    ) | reward_params(card.points, card.reward_id)
    changes.notify(cause, card.customer_id, STAMP_CARD_COMPLETED, params)


def challenge_completed(cause: CloudEvent, changes: Changes) -> None:
    done = cause.data_as(events.ChallengeCompleted)
    params = challenge_params(
        challenge_id=done.challenge_id,
        name=done.name,
        badge=done.badge,
        rewarded=done.grant_id is not None,
    ) | reward_params(done.points, done.reward_id)
    changes.achieve(cause, done.customer_id, done.challenge_id, CHALLENGE_COMPLETED, params)


def badge_earned(cause: CloudEvent, changes: Changes) -> None:
    earned = cause.data_as(events.BadgeEarned)
    params = badge_params(challenge_id=earned.challenge_id, badge=earned.badge)
    changes.achieve(cause, earned.customer_id, earned.challenge_id, BADGE_EARNED, params)


def engagement_rewarded(cause: CloudEvent, changes: Changes) -> None:
    # Only a surprise's and a birthday's reward are their own message: a stamp card's or a
    # challenge's is told by its completion event, a feedback's is not told.
    granted = cause.data_as(events.EngagementRewarded)
    template = reward_template(granted.reason)
    if template is None:
        return
    params = granted_params(
        rule_id=granted.rule_id,
        name=granted.name,
        points=granted.points,
        reward_id=granted.reward_id,
    )
    changes.notify(cause, granted.customer_id, template, params)


def points_expiring(cause: CloudEvent, changes: Changes) -> None:
    # Points warns per lot; the customer hears once per window of days (Changes.warn_expiry).
    expiring = cause.data_as(events.PointsExpiring)
    changes.warn_expiry(cause, expiring.customer_id, expiring.points, expiring.expires_at)


def points_offer_granted(cause: CloudEvent, changes: Changes) -> None:
    # A personal offer of points' (a win-back incentive, the only reason there is): its
    # message is the member's win-back for this lapse (domain/win_back_offers.py).
    changes.offer_win_back(cause, cause.data_as(events.PointsOfferGranted))


def purchase_completed(cause: CloudEvent, changes: Changes) -> None:
    purchase = cause.data_as(events.PurchaseCompleted)
    changes.bought(purchase.customer_id, purchase.occurred_at)
    changes.invite_feedback(cause, purchase)


Rule = Callable[[CloudEvent, Changes], None]

RULES: dict[str, Rule] = {
    events.CUSTOMER_ENROLLED: customer_enrolled,
    events.CUSTOMER_UPDATED: customer_updated,
    events.CUSTOMER_ERASED: customer_erased,
    events.TIER_CHANGED: tier_changed,
    events.TIER_DOWNGRADE_WARNING: tier_downgrade_warning,
    events.POINTS_EARNED: points_earned,
    events.POINTS_REDEEMED: points_redeemed,
    events.POINTS_EXPIRING: points_expiring,
    events.COUPON_ISSUED: coupon_issued,
    events.PURCHASE_COMPLETED: purchase_completed,
    events.STAMP_CARD_COMPLETED: stamp_card_completed,
    events.CHALLENGE_COMPLETED: challenge_completed,
    events.BADGE_EARNED: badge_earned,
    events.ENGAGEMENT_REWARDED: engagement_rewarded,
    events.POINTS_OFFER_GRANTED: points_offer_granted,
}

HANDLED_TYPES = frozenset(RULES)


async def apply_batch(batch: Sequence[CloudEvent], ctx: Context) -> None:
    """Applies the batch with a handful of statements, whatever its size: a few loads (the
    contacts it notifies, the points digests still open for the batch's earners, the merged
    expiry warnings its lots may join; the newer profile wins in SQL), the events are walked
    in order in memory, and the result is written set-based. Nothing is emitted: sending is
    the dispatcher's."""
    changes = Changes(
        ctx.now,
        ctx.digest_window,
        ctx.currency,
        ctx.welcome_window,
        ctx.expiry_window_days,
        ctx.expiry_hold,
        feedback_request_delay=ctx.feedback_request_delay,
    )
    await _load_channels(batch, changes, ctx.notifications)
    await _load_expiry_warnings(batch, changes, ctx.notifications)
    earnings = [
        event.data_as(events.PointsEarned) for event in batch if event.type == events.POINTS_EARNED
    ]
    earners = {earning.customer_id for earning in earnings if earning.reason != IMPORT}
    if earners:
        for digest in await ctx.notifications.open_digests(earners, ctx.now):
            changes.digests[digest.customer_id] = digest
    for event in batch:
        RULES[event.type](event, changes)
    scheduled = await changes.write(ctx.notifications)
    if changes.late_warnings:
        log.info(
            "%d expiry warning(s) for a window whose message already went out: not told again",
            len(changes.late_warnings),
        )
    if scheduled or changes.erased:
        # One line per batch, with counts: a line per message would drown the log, and no
        # personal data is ever logged.
        templates = Counter(
            d.template
            for per_customer in changes.deliveries.values()
            for d in per_customer
            if d.notification_id in scheduled
        )
        log.info(
            "batch of %d event(s): scheduled %d message(s) %s, erased %d customer(s)",
            len(batch),
            len(scheduled),
            dict(sorted(templates.items())),
            len(changes.erased),
        )


# The events that notify a customer over every channel they are reachable on. Points earned
# go out as an email digest only: an SMS per purchase would harass, and the partner reported
# the purchase itself. A profile update may welcome a customer first seen through it, and
# needs the stored contact anyway to tell whether they are.
_NOTIFYING = frozenset(
    {
        events.CUSTOMER_ENROLLED,
        events.CUSTOMER_UPDATED,
        events.TIER_CHANGED,
        events.TIER_DOWNGRADE_WARNING,
        events.POINTS_REDEEMED,
        events.POINTS_EXPIRING,
        events.COUPON_ISSUED,
        events.STAMP_CARD_COMPLETED,
        events.CHALLENGE_COMPLETED,
        events.BADGE_EARNED,
        events.ENGAGEMENT_REWARDED,
        events.POINTS_OFFER_GRANTED,
    }
)


async def _load_channels(
    batch: Sequence[CloudEvent], changes: Changes, notifications: ConsumerRepository
) -> None:
    """Two set-based loads for the whole batch: the stored contacts of the customers it
    notifies, then which of their partners have a webhook."""
    notifying = _NOTIFYING
    if changes.feedback_request_delay is not None:  # purchases invite feedback
        notifying = notifying | {events.PURCHASE_COMPLETED}
    notified = {
        str(getattr(event.payload(), "customer_id", ""))
        for event in batch
        if event.type in notifying
    } - {""}
    if not notified:
        return
    changes.stored_contacts = await notifications.contacts_of(notified)
    partners = {c.partner_id for c in changes.stored_contacts.values() if c.partner_id}
    partners |= {
        event.data_as(events.CustomerProfile).partner_id
        for event in batch
        if event.type in (events.CUSTOMER_ENROLLED, events.CUSTOMER_UPDATED)
    }
    changes.partners_with_webhooks = await notifications.partners_with_webhooks(partners)


async def _load_expiry_warnings(
    batch: Sequence[CloudEvent], changes: Changes, notifications: ConsumerRepository
) -> None:
    """One load for the batch: the merged expiry warnings its lots' windows may join, on
    every channel, in every time zone the customer has in the batch (a profile in it may
    move them), locked so that none goes out while a lot joins it."""
    zones: dict[str, set[ZoneInfo]] = {}
    for event in batch:
        if event.type in (events.CUSTOMER_ENROLLED, events.CUSTOMER_UPDATED):
            profile = event.data_as(events.CustomerProfile)
            zones.setdefault(profile.customer_id, set()).add(
                time_zone_of(_contact(profile, event), None)
            )
    ids = set()
    for event in batch:
        if event.type == events.POINTS_EXPIRING:
            expiring = event.data_as(events.PointsExpiring)
            customer = expiring.customer_id
            for zone in zones.get(customer, set()) | {changes.zone_of(customer)}:
                window = expiry_window(expiring.expires_at, zone, changes.expiry_window_days)
                ids |= {
                    expiry_warning_id(customer, window.first_day, window.days, channel)
                    for channel in Channel
                }
    changes.expiry_warnings = await notifications.deliveries_by_id(ids)


def _contact(profile: events.CustomerProfile, cause: CloudEvent) -> Contact:
    return Contact(
        customer_id=profile.customer_id,
        email=profile.email,
        phone=profile.phone,
        locale=profile.locale,
        time_zone=profile.time_zone,
        consent_email=profile.consent.email,
        consent_sms=profile.consent.sms,
        updated_at=cause.time,
        profile_version=profile.version,
        partner_id=profile.partner_id,
    )
