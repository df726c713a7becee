"""What points does with a batch of the events it consumes: plain functions, side effects
injected.

A batch is applied in three steps: the state it needs is loaded for all its customers at
once, the events are walked in order applying the rules in memory (so a customer's purchase
sees the tier an earlier event of the same batch gave them), and what it caused is written
with a few multi-row statements, announcing only the entries the ledger did not have. The
result is the same as applying the events one at a time, and a batch (or any part of it)
applied again changes nothing.

Engagement's gifts (a grant of a catalogue's reward: `domain.engagement`) are coupons: the
revoked ones issued before the batch are voided once the revocations are kept (a gift being
issued by another consumer at that moment is waited for, then found) and before any lock on
the customers (the expiry job locks a coupon, then its customer); the new ones are issued
last, counted off their rewards' stock after any lock on the customers (the order the API's
redemptions take: the customer, then the reward).

Targeting (issue 21): insights' segment changes keep a read model of who is in which segment
(the latest change of a member and segment wins), which campaigns that name a segment read;
a member entering `lifecycle:lapsed` is made the program's win-back offer, a personal campaign
(`domain.offers`). What a batch's purchases need of both, and what its segment changes need to
tell a newer change from an older one, is loaded in one query.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from services.points.domain.coupons import Coupon, CouponStatus, new_code, revoke_gift
from services.points.domain.earning import Campaign, Earning, Item, PurchaseFacts, purchase_points
from services.points.domain.engagement import (
    CouponGrantRefused,
    Gift,
    Grant,
    Revocation,
    gift_coupon,
    grant_entry_id,
    grant_lot,
    revocation_entry_id,
    take_back_grant,
)
from services.points.domain.imports import OpeningLot, opening_lots
from services.points.domain.lots import Allocation
from services.points.domain.model import (
    LedgerEntry,
    Member,
    Program,
    TierAssignment,
    latest_tier,
    purchase_earning,
    referral_bonus,
    welcome_bonus,
)
from services.points.domain.offers import (
    WIN_BACK_SEGMENT,
    Membership,
    PersonalOffer,
    SegmentChange,
    segments_in,
    supersedes,
    win_back_offer,
)
from services.points.domain.referrals import (
    referral_id,
    referral_reversal_id,
    refund_taking_it_back,
    take_back,
)
from services.points.domain.refunds import (
    PurchaseRecord,
    RefundRecord,
    campaign_lot_id,
    points_to_reverse,
    purchase_key,
    repay_debt,
    reversal_id,
    reverse,
)
from services.points.domain.rewards import Reward
from services.points.domain.tender import RETURN_RULE, TenderLink, returns
from services.points.domain.velocity import cap, day_of, next_day
from services.points.ports import ConsumerRepository
from shared.messaging import events
from shared.messaging.events import CloudEvent, derived_event_id
from shared.messaging.outbox import EventSink, emit
from shared.observability.metrics import TENDER_LINKS_REFUSED

SOURCE = "points"

log = logging.getLogger(__name__)

# customer.updated too: the customers topic is compacted, so a consumer starting afresh may
# find a customer's latest profile only, never the enrolment, and must enrol them from it.
HANDLED_TYPES = frozenset(
    {
        events.CUSTOMER_ENROLLED,
        events.CUSTOMER_UPDATED,
        events.PURCHASE_COMPLETED,
        events.PURCHASE_REFUNDED,
        events.TIER_CHANGED,
        events.POINTS_IMPORTED,
        events.ENGAGEMENT_REWARDED,
        events.ENGAGEMENT_REWARD_REVOKED,
        events.SEGMENT_ENTERED,
        events.SEGMENT_LEFT,
        events.CUSTOMER_ERASED,
    }
)


@dataclass(frozen=True)
class Context:
    ledger: ConsumerRepository
    sink: EventSink
    program: Program
    now: datetime


@dataclass(frozen=True)
class _Enrolment:
    cause: CloudEvent
    member: Member
    # False for an imported member whose import did not ask for the welcome (`--welcome`).
    welcome: bool = True


@dataclass(frozen=True)
class _Purchase:
    cause: CloudEvent
    entry_id: str
    customer_id: str
    purchase_id: str
    facts_key: str  # the purchase's key among refunds: partner and purchase id
    facts: PurchaseFacts
    day: datetime  # the start of the program's day it was made on, for the velocity guard
    redemption_id: str | None = None  # points as tender: the redemption that paid for part


@dataclass(frozen=True)
class _TierChange:
    cause: CloudEvent
    assignment: TierAssignment


@dataclass(frozen=True)
class _Refund:
    cause: CloudEvent
    refund: RefundRecord


@dataclass(frozen=True)
class _Import:
    """An imported member's opening lots, those still valid at processing."""

    cause: CloudEvent
    lots: list[LedgerEntry]


@dataclass(frozen=True)
class _Grant:
    """Engagement's grant of points (`domain.engagement`)."""

    cause: CloudEvent
    grant: Grant


@dataclass(frozen=True)
class _Give:
    """Engagement's grant of a catalogue's reward: its coupon, given."""

    cause: CloudEvent
    gift: Gift


@dataclass(frozen=True)
class _Revoke:
    cause: CloudEvent
    revocation: Revocation


@dataclass(frozen=True)
class _SegmentChange:
    cause: CloudEvent
    change: SegmentChange


@dataclass(frozen=True)
class _Erasure:
    """An erased member: their segment memberships and offers go (the ledger stays: it holds
    no personal data)."""

    cause: CloudEvent
    customer_id: str


_Step = (
    _Enrolment
    | _Purchase
    | _TierChange
    | _Refund
    | _Import
    | _Grant
    | _Give
    | _Revoke
    | _SegmentChange
    | _Erasure
)


async def apply_batch(batch: Sequence[CloudEvent], ctx: Context) -> None:
    """Load what the batch needs, walk it in order, write what it caused, then apply the
    refunds whose purchase is there and the debt new earnings repay."""
    steps = _read(batch, ctx.program, ctx.now)
    if not steps:
        return
    loaded = await _load(steps, ctx)
    walk = _walk(steps, loaded, ctx.program)
    waited = await _write(walk, ctx)
    if walk.revocations:
        await _void_gifts(walk.revocations, ctx)
    await _refund_and_repay(walk, loaded, waited, ctx)
    if walk.gifts:
        await _issue_gifts(walk, ctx)


@dataclass
class _Loaded:
    """What a batch needs of the ledger, loaded for all its customers at once."""

    refunded_keys: set[str]  # the purchases the batch refunds
    known_purchases: dict[str, PurchaseRecord]
    refunds_of: dict[str, list[RefundRecord]]  # kept before the batch; the walk adds to it
    new_customers: set[str]  # enrolled by this batch: their first enrolment grants the bonus
    tiers: dict[str, TierAssignment]
    referrers: dict[str, str]
    earned_today: dict[tuple[str, datetime], int]  # for the velocity guard
    campaigns: list[Campaign]
    # The batch's engagement grants points had never seen (neither granted nor revoked).
    new_grants: set[str] = field(default_factory=set)
    rewards: dict[str, Reward] = field(default_factory=dict)  # those new gifts give
    # Targeting: the memberships kept of the members whose segments the batch needs, by
    # member and segment; the offers of its buyers (and of members entering lapsed) live
    # during it. The walk keeps both up to date as it goes.
    segments: dict[str, dict[str, Membership]] = field(default_factory=dict)
    offers: dict[str, list[PersonalOffer]] = field(default_factory=dict)


async def _load(steps: Sequence[_Step], ctx: Context) -> _Loaded:
    """Asks only what the batch's kinds of event need: a batch of purchases alone (the common
    case) asks nothing about refunds. The first enrolment of a customer the ledger did not
    know grants the bonus."""
    first_enrolments: dict[str, Member] = {}
    buyers: set[str] = set()
    purchase_keys: set[str] = set()
    refunded_keys: set[str] = set()
    granted: set[tuple[str, str]] = set()
    gifts: list[Gift] = []
    for step in steps:
        if isinstance(step, _Grant):
            granted.add((step.grant.grant_id, step.grant.customer_id))
        elif isinstance(step, _Give):
            granted.add((step.gift.grant_id, step.gift.customer_id))
            gifts.append(step.gift)
        elif isinstance(step, _Enrolment):
            first_enrolments.setdefault(step.member.customer_id, step.member)
        elif isinstance(step, _Purchase):
            buyers.add(step.customer_id)
            purchase_keys.add(step.facts_key)
        elif isinstance(step, _Refund):
            refunded_keys.add(step.refund.purchase_key)
    guarded = ctx.program.max_points_per_day > 0
    # The purchases refunded, and, for the velocity guard, whether a purchase is applied
    # again; the refunds kept of the refunded ones (a refund may have come before its
    # purchase: `record_purchases` says which purchases find refunds waiting).
    looked_up = refunded_keys | purchase_keys if guarded else refunded_keys
    known_purchases = await ctx.ledger.purchases_of(looked_up) if looked_up else {}
    refunds_of = await ctx.ledger.refunds_of(refunded_keys) if refunded_keys else {}
    new_customers = (
        await ctx.ledger.add_customers(list(first_enrolments.values()))
        if first_enrolments
        else set()
    )
    tiers, referrers = await ctx.ledger.buyers_of(buyers) if buyers else ({}, {})
    purchases = [s for s in steps if isinstance(s, _Purchase)]
    earned_today = await _earned_today(purchases, ctx) if guarded and purchases else {}
    new_grants = await ctx.ledger.claim_grants(sorted(granted)) if granted else set()
    given = {gift.reward_id for gift in gifts if gift.grant_id in new_grants}
    campaigns = await _campaigns_for(purchases, ctx)
    segments, offers = await _targeting_for(steps, purchases, campaigns, ctx)
    return _Loaded(
        refunded_keys=refunded_keys,
        known_purchases=known_purchases,
        refunds_of=refunds_of,
        new_customers=new_customers,
        tiers=tiers,
        referrers=referrers,
        earned_today=earned_today,
        campaigns=campaigns,
        new_grants=new_grants,
        rewards=await ctx.ledger.rewards_of(given) if given else {},
        segments=segments,
        offers=offers,
    )


async def _earned_today(
    purchases: Sequence[_Purchase], ctx: Context
) -> dict[tuple[str, datetime], int]:
    """What each buyer earned already on the day of each of their purchases."""
    ends = {day: next_day(day, ctx.program.zone) for day in {p.day for p in purchases}}
    return await ctx.ledger.earned_on({(p.customer_id, p.day, ends[p.day]) for p in purchases})


async def _campaigns_for(purchases: Sequence[_Purchase], ctx: Context) -> list[Campaign]:
    """Every campaign that may apply to one of the purchases, by when they were made."""
    if not purchases:
        return []
    times = [p.facts.occurred_at for p in purchases]
    return await ctx.ledger.campaigns_during(min(times), max(times))


async def _targeting_for(
    steps: Sequence[_Step],
    purchases: Sequence[_Purchase],
    campaigns: Sequence[Campaign],
    ctx: Context,
) -> tuple[dict[str, dict[str, Membership]], dict[str, list[PersonalOffer]]]:
    """In one query: the memberships of the members whose segments change in the batch (to
    tell a newer change from an older one), and of its buyers when a campaign names a
    segment; the offers running during the batch's purchases of its buyers and, when the
    program makes an offer, of the members entering lapsed (a running one is not doubled)."""
    changes = [step.change for step in steps if isinstance(step, _SegmentChange)]
    members = {change.customer_id for change in changes}
    buyers = {p.customer_id for p in purchases}
    if any(c.segment is not None for c in campaigns):
        members |= buyers
    offered, times = set(buyers), [p.facts.occurred_at for p in purchases]
    if ctx.program.win_back_offer is not None:
        lapsing = [c for c in changes if c.member and c.segment == WIN_BACK_SEGMENT]
        offered |= {c.customer_id for c in lapsing}
        times += [c.changed_at for c in lapsing]
    if not members and not offered:
        return {}, {}
    earliest, latest = (min(times), max(times)) if times else (ctx.now, ctx.now)
    return await ctx.ledger.targeting_of(members, offered, earliest, latest)


@dataclass
class _Walk:
    """The batch walked in order, its rules applied in memory: what it grants, holds back and
    records, and the purchases whose refunds to apply."""

    program: Program
    loaded: _Loaded
    grants: list[tuple[LedgerEntry, CloudEvent, str]] = field(default_factory=list)
    tier_changes: dict[str, TierAssignment] = field(default_factory=dict)
    new_purchases: dict[str, PurchaseRecord] = field(default_factory=dict)
    new_refunds: list[RefundRecord] = field(default_factory=list)
    held: list[LedgerEntry] = field(default_factory=list)
    # The purchases whose refunds to apply, in order: a refund's always; a purchase's when
    # refunds were kept before this batch (`record_purchases` tells which, after the walk).
    refund_moments: list[tuple[str, bool]] = field(default_factory=list)  # (key, by a refund)
    revocations: list[Revocation] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)  # by the batch's revocations so far
    # The coupons the batch gives, by grant id, with their reward and cause; the first
    # revocation of one of them later in the batch; how many each reward gives.
    gifts: dict[str, tuple[Coupon, Reward, CloudEvent]] = field(default_factory=dict)
    gifts_revoked: dict[str, Revocation] = field(default_factory=dict)
    given: dict[str, int] = field(default_factory=dict)
    # Targeting: the latest change of each (member, segment) to keep, the offers made (each
    # with its cause), and the members erased (their rows deleted before the rest is kept).
    segment_changes: dict[tuple[str, str], SegmentChange] = field(default_factory=dict)
    offers_made: list[tuple[PersonalOffer, CloudEvent]] = field(default_factory=list)
    erased: set[str] = field(default_factory=set)

    def enrol(self, step: _Enrolment) -> None:
        customer_id = step.member.customer_id
        if customer_id not in self.loaded.new_customers:
            return
        self.loaded.new_customers.discard(customer_id)  # a second enrolment grants nothing
        if not step.welcome:
            return
        bonus = welcome_bonus(
            self.program,
            entry_id=derived_event_id(step.cause.id, "welcome-bonus"),
            customer_id=customer_id,
            enrolled_at=step.member.enrolled_at,
            partner_id=step.member.partner_id,
        )
        if bonus.points > 0:
            self.grants.append((bonus, step.cause, "points-earned"))

    def refund(self, step: _Refund) -> None:
        refund = step.refund
        kept = self.loaded.refunds_of.setdefault(refund.purchase_key, [])
        if all(r.refund_key != refund.refund_key for r in kept):
            kept.append(refund)
            self.new_refunds.append(refund)
        self.refund_moments.append((refund.purchase_key, True))

    def purchase(self, step: _Purchase) -> None:
        # The tier and segments as of this purchase: a change earlier in the batch counts.
        assignment = self.loaded.tiers.get(step.customer_id)
        memberships = self.loaded.segments.get(step.customer_id)
        earning = purchase_points(
            self.program,
            step.facts,
            tier=assignment.tier if assignment is not None else None,
            campaigns=self.loaded.campaigns,
            segments=segments_in(memberships) if memberships else frozenset(),
            offers=[offer.terms() for offer in self.loaded.offers.get(step.customer_id, ())],
        )
        applied_before = (
            step.facts_key in self.loaded.known_purchases or step.facts_key in self.new_purchases
        )
        for entry, purpose in _lots_of(self.program, step, earning):
            if self.program.max_points_per_day > 0 and not applied_before:
                self._guarded(step, entry, purpose)
            else:
                self.grants.append((entry, step.cause, purpose))
        self._refer(step)
        if not applied_before:
            self.new_purchases[step.facts_key] = PurchaseRecord(
                step.facts_key,
                step.customer_id,
                step.purchase_id,
                step.facts.total,
                earning.points,
                step.facts.partner_id,
                redemption_id=step.redemption_id,
            )
        self.refund_moments.append((step.facts_key, False))

    def _guarded(self, step: _Purchase, entry: LedgerEntry, purpose: str) -> None:
        """The velocity guard: what passes the day's ceiling is held back for review."""
        day = (step.customer_id, step.day)
        before = self.loaded.earned_today.get(day, 0)
        self.loaded.earned_today[day] = before + entry.points
        granted, kept_back = cap(entry, before, self.program.max_points_per_day)
        if granted is not None:
            self.grants.append((granted, step.cause, purpose))
        if kept_back is not None:
            self.held.append(kept_back)

    def _refer(self, step: _Purchase) -> None:
        """The referrer's bonus for the first purchase of at least the minimum (the ledger
        keeps one per referred member: a later batch's purchase adds nothing)."""
        referrer = self.loaded.referrers.get(step.customer_id)
        if referrer is None:
            return
        referral = referral_bonus(
            self.program,
            referred=step.customer_id,
            referrer=referrer,
            purchased_at=step.facts.occurred_at,
            partner_id=step.facts.partner_id,
            purchase_id=step.purchase_id,
            total=step.facts.total,
        )
        if referral is not None:
            del self.loaded.referrers[step.customer_id]  # the batch's first qualifying one
            self.grants.append((referral, step.cause, "referral-bonus"))

    def bring_over(self, step: _Import) -> None:
        """An import's lots, each announced as earned (reason "import") once recorded."""
        for lot in step.lots:
            self.grants.append((lot, step.cause, f"points-imported/{lot.entry_id}"))

    def grant(self, step: _Grant) -> None:
        """A grant's lot when points never saw the grant (granted or revoked before this
        batch) and no revocation earlier in the batch took it: one per grant id, whichever
        event carried it."""
        grant_id = step.grant.grant_id
        if grant_id not in self.loaded.new_grants or grant_id in self.revoked:
            return
        self.grants.append((grant_lot(self.program, step.grant), step.cause, "points-earned"))

    def give(self, step: _Give) -> None:
        """A gift's coupon, under the same rule as a grant's lot; refused (the event set
        aside) for a reward unknown, closed at the grant, or whose stock the gifts before it
        took (`domain.engagement.gift_coupon`)."""
        gift = step.gift
        grant_id = gift.grant_id
        if grant_id not in self.loaded.new_grants or grant_id in self.revoked:
            return
        if grant_id in self.gifts:  # the same grant earlier in the batch
            return
        reward = self.loaded.rewards.get(gift.reward_id)
        given = self.given.get(gift.reward_id, 0)
        before = given + (reward.redeemed if reward is not None else 0)
        coupon = gift_coupon(gift, reward, issued_before=before, code=new_code())
        assert reward is not None  # gift_coupon refuses an unknown one
        self.given[gift.reward_id] = given + 1
        self.gifts[grant_id] = (coupon, reward, step.cause)

    def revoke(self, step: _Revoke) -> None:
        grant_id = step.revocation.grant_id
        self.revoked.add(grant_id)
        self.revocations.append(step.revocation)
        if grant_id in self.gifts:
            self.gifts_revoked.setdefault(grant_id, step.revocation)

    def change_tier(self, step: _TierChange) -> None:
        assignment = step.assignment
        customer_id = assignment.customer_id
        self.loaded.tiers[customer_id] = latest_tier(self.loaded.tiers.get(customer_id), assignment)
        self.tier_changes[customer_id] = latest_tier(self.tier_changes.get(customer_id), assignment)

    def change_segment(self, step: _SegmentChange) -> None:
        """Kept when newer than what is known of the member and segment; an entry into
        lapsed makes the program's win-back offer, its id derived from the event's (a second
        delivery makes the same one)."""
        change = step.change
        known = self.loaded.segments.setdefault(change.customer_id, {})
        if not supersedes(change, known.get(change.segment)):
            return
        known[change.segment] = change.membership
        self.segment_changes[change.customer_id, change.segment] = change
        offers = self.loaded.offers.setdefault(change.customer_id, [])
        offer = win_back_offer(
            self.program.win_back_offer,
            change,
            offer_id=derived_event_id(step.cause.id, "win-back-offer"),
            offers=offers,
        )
        if offer is not None:
            offers.append(offer)
            self.offers_made.append((offer, step.cause))

    def erase(self, step: _Erasure) -> None:
        """What the batch knew or made of the member's segments and offers goes with them; a
        change after the erasure in the batch is kept afresh."""
        customer_id = step.customer_id
        self.erased.add(customer_id)
        self.loaded.segments.pop(customer_id, None)
        self.loaded.offers.pop(customer_id, None)
        self.segment_changes = {
            key: change for key, change in self.segment_changes.items() if key[0] != customer_id
        }
        self.offers_made = [
            (offer, cause) for offer, cause in self.offers_made if offer.customer_id != customer_id
        ]


def _walk(steps: Sequence[_Step], loaded: _Loaded, program: Program) -> _Walk:
    walk = _Walk(program, loaded)
    for step in steps:
        if isinstance(step, _Enrolment):
            walk.enrol(step)
        elif isinstance(step, _Refund):
            walk.refund(step)
        elif isinstance(step, _Purchase):
            walk.purchase(step)
        elif isinstance(step, _Import):
            walk.bring_over(step)
        elif isinstance(step, _Grant):
            walk.grant(step)
        elif isinstance(step, _Give):
            walk.give(step)
        elif isinstance(step, _Revoke):
            walk.revoke(step)
        elif isinstance(step, _SegmentChange):
            walk.change_segment(step)
        elif isinstance(step, _Erasure):
            walk.erase(step)
        else:
            walk.change_tier(step)
    return walk


async def _write(walk: _Walk, ctx: Context) -> set[str]:
    """Writes what the walk caused, and announces only what the ledger did not have: a
    purchase earns once whichever event carried it, in this batch or before it. The keys of
    the new purchases that found refunds waiting."""
    await _write_targeting(walk, ctx)
    if walk.tier_changes:
        await ctx.ledger.set_tiers(list(walk.tier_changes.values()))
    new_entries = [*(entry for entry, _, _ in walk.grants), *walk.held]
    recorded = await ctx.ledger.record(new_entries) if new_entries else set()
    for entry, cause, purpose in walk.grants:
        if entry.entry_id in recorded:
            recorded.discard(entry.entry_id)
            await _announce_earned(ctx, entry, cause, purpose)
    waited = (
        await ctx.ledger.record_purchases(list(walk.new_purchases.values()))
        if walk.new_purchases
        else set()
    )
    await _link_redemptions(walk, ctx)
    if walk.new_refunds:
        await ctx.ledger.add_refunds(walk.new_refunds)
    if walk.revocations:
        await ctx.ledger.add_revocations(walk.revocations)
    return waited


async def _write_targeting(walk: _Walk, ctx: Context) -> None:
    """The erasures first (a change after one in the batch is kept afresh), then the segment
    changes, then the offers, each announced once: `points.offer_granted` only for an offer
    not kept before."""
    if walk.erased:
        await ctx.ledger.erase_targeting(walk.erased)
    if walk.segment_changes:
        await ctx.ledger.set_segments(list(walk.segment_changes.values()))
    if not walk.offers_made:
        return
    made = await ctx.ledger.add_offers([offer for offer, _ in walk.offers_made], ctx.now)
    for offer, cause in walk.offers_made:
        if offer.offer_id in made:
            log.info("offer %s (%s) made to %s", offer.offer_id, offer.reason, offer.customer_id)
            await emit(
                ctx.sink,
                events.PointsOfferGranted(
                    offer_id=offer.offer_id,
                    customer_id=offer.customer_id,
                    reason="win_back",
                    name=offer.name,
                    multiplier=offer.multiplier,
                    bonus=offer.bonus,
                    starts_at=offer.starts_at,
                    ends_at=offer.ends_at,
                ),
                source=SOURCE,
                customer_id=offer.customer_id,
                time=ctx.now,
                cause_id=cause.id,
                purpose="offer-granted",
            )


async def _void_gifts(revocations: Sequence[Revocation], ctx: Context) -> None:
    """The coupons of revoked gifts issued before the batch, locked (a till taking one waits
    for this batch, or this batch for it): voided while unused; a used or expired one only
    records the revocation. Nothing is emitted for a voided coupon (no event tells
    of it: `coupon.expired` is a coupon that reached its expiry)."""
    found = await ctx.ledger.gift_coupons({r.grant_id for r in revocations})
    if not found:
        return
    first: dict[str, Revocation] = {}
    for revocation in revocations:
        first.setdefault(revocation.grant_id, revocation)
    revoked = [
        changed
        for coupon in found
        if coupon.grant_id is not None
        and (changed := revoke_gift(coupon, first[coupon.grant_id].revoked_at, ctx.now)) is not None
    ]
    await ctx.ledger.save_revoked(revoked)
    for coupon in revoked:
        _log_revoked(coupon)


def _log_revoked(coupon: Coupon) -> None:
    if coupon.status is CouponStatus.VOIDED:
        log.info("gift coupon %s of grant %s voided", coupon.coupon_id, coupon.grant_id)
    else:
        log.info(
            "gift coupon %s of grant %s revoked when %s: nothing taken back",
            coupon.coupon_id,
            coupon.grant_id,
            coupon.status.value,
        )


async def _issue_gifts(walk: _Walk, ctx: Context) -> None:
    """The batch's gift coupons, counted off their rewards' stock (a redemption may have
    taken it since it was read: the event is refused then) and kept; `coupon.issued` for
    each, but one its grant's revocation voided in the same batch."""
    refused = await ctx.ledger.take_stock(walk.given)
    if refused:
        raise CouponGrantRefused(f"rewards {sorted(refused)} are out of stock")
    issued: list[tuple[Coupon, Reward, CloudEvent]] = []
    for grant_id, (coupon, reward, cause) in walk.gifts.items():
        revocation = walk.gifts_revoked.get(grant_id)
        voided = None if revocation is None else revoke_gift(coupon, revocation.revoked_at, ctx.now)
        issued.append((voided or coupon, reward, cause))
    await ctx.ledger.add_coupons([coupon for coupon, _, _ in issued])
    for coupon, reward, _ in issued:
        if coupon.revoked_at is None:
            await _announce_gift(ctx, coupon, reward)
        else:
            _log_revoked(coupon)


async def _announce_gift(ctx: Context, coupon: Coupon, reward: Reward) -> None:
    """`coupon.issued` of a gift: 0 points, its grant named (notifications words it as a
    gift); derived from the coupon as a redemption's is."""
    await emit(
        ctx.sink,
        events.CouponIssued(
            coupon_id=coupon.coupon_id,
            customer_id=coupon.customer_id,
            redemption_id=coupon.redemption_id,
            reward_id=coupon.reward_id,
            reward=reward.name,
            points=coupon.points,
            partner_id=reward.partner_id,
            expires_at=coupon.expires_at,
            grant_id=coupon.grant_id,
        ),
        source=SOURCE,
        customer_id=coupon.customer_id,
        time=ctx.now,
        cause_id=coupon.coupon_id,
        purpose="coupon-issued",
    )


async def _link_redemptions(walk: _Walk, ctx: Context) -> None:
    """Points as tender: links each new purchase to the redemption it names, in one
    statement. A redemption that cannot pay for it leaves the purchase applied without the
    link (logged by ids, counted by reason): never a reason to refuse the event. The till
    redeems before it reports the purchase: one applied before its redemption exists stays
    unlinked (points does not wait for a redemption that may never come)."""
    links = [
        TenderLink(record.purchase_key, record.customer_id, record.redemption_id)
        for record in walk.new_purchases.values()
        if record.redemption_id is not None
    ]
    if not links:
        return
    refused = await ctx.ledger.link_redemptions(links)
    for key, reason in sorted(refused.items()):
        record = walk.new_purchases[key]
        log.warning(
            "purchase %s: redemption %s not linked (%s)",
            record.purchase_key,
            record.redemption_id,
            reason,
        )
        TENDER_LINKS_REFUSED.labels(reason=reason).inc()
        walk.new_purchases[key] = replace(record, redemption_id=None)


async def _announce_earned(
    ctx: Context, entry: LedgerEntry, cause: CloudEvent, purpose: str
) -> None:
    """The points.earned event of a new entry, with an id derived from its cause (a replay
    re-emits it rather than a second one)."""
    assert entry.expires_at is not None
    await emit(
        ctx.sink,
        events.PointsEarned(
            customer_id=entry.customer_id,
            points=entry.points,
            purchase_id=entry.purchase_id,
            reason=entry.reason,
            rule_ids=list(entry.rule_ids),
            available_at=entry.available_at,
            expires_at=entry.expires_at,
        ),
        source=SOURCE,
        customer_id=entry.customer_id,
        time=ctx.now,
        cause_id=cause.id,
        purpose=purpose,
    )


async def _refund_and_repay(walk: _Walk, loaded: _Loaded, waited: set[str], ctx: Context) -> None:
    """Refunds, once their purchase is there, and the debt later earnings repay."""
    to_reverse = list(
        dict.fromkeys(key for key, by_refund in walk.refund_moments if by_refund or key in waited)
    )
    known_purchases, refunds_of = loaded.known_purchases, loaded.refunds_of
    # Purchases that found refunds kept before this batch and were not refunded in it: the
    # purchase as first recorded (an earlier delivery may have earned otherwise), and those
    # refunds.
    found_waiting = [key for key in waited if key not in loaded.refunded_keys]
    if found_waiting:
        known_purchases.update(await ctx.ledger.purchases_of(found_waiting))
        refunds_of.update(await ctx.ledger.refunds_of(found_waiting))
    for key, record in walk.new_purchases.items():
        known_purchases.setdefault(key, record)
    reversible = [key for key in to_reverse if key in known_purchases]
    refunded = [(known_purchases[key], refunds_of[key]) for key in reversible]
    grantees = {entry.customer_id for entry, _, _ in walk.grants}
    await _reverse_and_repay(
        ctx,
        refunded,
        debtors=await ctx.ledger.debtors(grantees) if grantees else set(),
        referrers=await _referrers_of(refunded, ctx),
        revocations=walk.revocations,
    )


async def _referrers_of(
    refunded: Sequence[tuple[PurchaseRecord, list[RefundRecord]]], ctx: Context
) -> dict[str, str]:
    """The referrer (known, not themselves) of each refunded purchase's buyer: whose bonus a
    refund of the purchase that qualified it may take back (`domain.referrals`)."""
    buyers = {purchase.customer_id for purchase, _ in refunded}
    return (await ctx.ledger.buyers_of(buyers))[1] if buyers else {}


async def _reverse_and_repay(
    ctx: Context,
    refunded: list[tuple[PurchaseRecord, list[RefundRecord]]],
    debtors: set[str],
    referrers: dict[str, str],
    revocations: Sequence[Revocation] = (),
) -> None:
    customers = {purchase.customer_id for purchase, _ in refunded} | debtors
    customers |= {referrers[p.customer_id] for p, _ in refunded if p.customer_id in referrers}
    customers |= {revocation.customer_id for revocation in revocations}
    if not customers:
        return
    # The API's spends draw on the same lots: they wait for this batch, and it for them.
    await ctx.ledger.lock_customers(customers)
    ledgers, allocations = await ctx.ledger.ledgers_of(customers)
    drawn: list[Allocation] = list(allocations)
    reversals: list[LedgerEntry] = []
    new_allocations: list[tuple[str, Allocation]] = []
    refund_ids: dict[str, str] = {}  # the refund (or grant) each reversal names
    returned: list[tuple[LedgerEntry, list[Allocation]]] = []
    for purchase, refunds in refunded:
        entries = ledgers[purchase.customer_id]
        # Points as tender first: a reversal may then take back what they returned.
        for _, entry, given in returns(
            entries, drawn, purchase=purchase, refunds=refunds, now=ctx.now
        ):
            entries.append(entry)
            drawn.extend(given)
            returned.append((entry, given))
            new_allocations.extend((purchase.customer_id, a) for a in given)
        present = {entry.entry_id for entry in entries}
        for refund, points in points_to_reverse(purchase, refunds):
            if reversal_id(refund) in present:
                continue
            entry, taken = reverse(
                entries,
                drawn,
                purchase=purchase,
                refund=refund,
                points=points,
                policy=ctx.program.refund_policy,
                now=ctx.now,
            )
            entries.append(entry)
            drawn.extend(taken)
            reversals.append(entry)
            refund_ids[entry.entry_id] = refund.refund_id
            new_allocations.extend((purchase.customer_id, a) for a in taken)
    for entry, taken, refund in _referrals_taken_back(ctx, refunded, referrers, ledgers, drawn):
        reversals.append(entry)
        refund_ids[entry.entry_id] = refund.refund_id
        new_allocations.extend((entry.customer_id, a) for a in taken)
    for entry, taken, refund_id in _grants_taken_back(ctx, revocations, ledgers, drawn):
        reversals.append(entry)
        refund_ids[entry.entry_id] = refund_id
        new_allocations.extend((entry.customer_id, a) for a in taken)
    for customer_id in sorted(customers):
        repaid = repay_debt(ledgers[customer_id], drawn, ctx.now)
        drawn.extend(repaid)
        new_allocations.extend((customer_id, a) for a in repaid)
    await ctx.ledger.record([*(entry for entry, _ in returned), *reversals])
    await ctx.ledger.record_allocations(new_allocations)
    await _announce_returned(ctx, returned, ledgers)
    for entry in reversals:
        if entry.points < 0:
            await emit(
                ctx.sink,
                events.PointsReversed(
                    customer_id=entry.customer_id,
                    points=-entry.points,
                    refund_id=refund_ids[entry.entry_id],
                ),
                source=SOURCE,
                customer_id=entry.customer_id,
                time=ctx.now,
                cause_id=entry.entry_id,
                purpose="points-reversed",
            )


def _referrals_taken_back(
    ctx: Context,
    refunded: Sequence[tuple[PurchaseRecord, list[RefundRecord]]],
    referrers: dict[str, str],
    ledgers: dict[str, list[LedgerEntry]],
    drawn: list[Allocation],
) -> list[tuple[LedgerEntry, list[Allocation], RefundRecord]]:
    """The referrers' bonuses the refunded purchases take back, each with what it drew and
    the refund that took it; added to the referrers' ledgers and to `drawn` as they go."""
    found: list[tuple[LedgerEntry, list[Allocation], RefundRecord]] = []
    for purchase, refunds in refunded:
        referrer = referrers.get(purchase.customer_id)
        if referrer is None:
            continue
        taken_back = _referral_taken_back(ctx, ledgers[referrer], drawn, purchase, refunds)
        if taken_back is not None:
            ledgers[referrer].append(taken_back[0])
            drawn.extend(taken_back[1])
            found.append(taken_back)
    return found


def _grants_taken_back(
    ctx: Context,
    revocations: Sequence[Revocation],
    ledgers: dict[str, list[LedgerEntry]],
    drawn: list[Allocation],
) -> list[tuple[LedgerEntry, list[Allocation], str]]:
    """The reversal of each revoked grant the ledger holds and did not take back yet, with
    what it drew and the refund id its `points.reversed` names; added to the members' ledgers
    and to `drawn` as they go. A grant never seen has nothing to take back."""
    found: list[tuple[LedgerEntry, list[Allocation], str]] = []
    for revocation in revocations:
        entries = ledgers[revocation.customer_id]
        present = {entry.entry_id: entry for entry in entries}
        granted = present.get(grant_entry_id(revocation.grant_id))
        if granted is None or revocation_entry_id(revocation.grant_id) in present:
            continue
        entry, taken = take_back_grant(
            entries,
            drawn,
            grant=granted,
            revocation=revocation,
            policy=ctx.program.refund_policy,
            now=ctx.now,
        )
        entries.append(entry)
        drawn.extend(taken)
        found.append((entry, taken, revocation.reversal_refund_id))
    return found


def _referral_taken_back(
    ctx: Context,
    entries: list[LedgerEntry],
    drawn: Sequence[Allocation],
    purchase: PurchaseRecord,
    refunds: Sequence[RefundRecord],
) -> tuple[LedgerEntry, list[Allocation], RefundRecord] | None:
    """The reversal of the referrer's bonus (`entries`: the referrer's ledger) when refunds
    of the purchase that qualified it, made within the return window, leave less than the
    minimum kept; None: the bonus stays, or was taken back already."""
    present = {entry.entry_id: entry for entry in entries}
    referral = present.get(referral_id(purchase.customer_id))
    if referral is None or referral_reversal_id(purchase.customer_id) in present:
        return None
    refund = refund_taking_it_back(referral, purchase, refunds, ctx.program.referral_min_purchase)
    if refund is None:
        return None
    entry, taken = take_back(
        entries,
        drawn,
        referral=referral,
        refund=refund,
        policy=ctx.program.refund_policy,
        now=ctx.now,
    )
    return entry, taken, refund


async def _announce_returned(
    ctx: Context,
    returned: Sequence[tuple[LedgerEntry, list[Allocation]]],
    ledgers: dict[str, list[LedgerEntry]],
) -> None:
    """A `points.earned` (reason "refund of points spent", no purchase) for each lot a
    refund gave spent points back to, with that lot's own expiry; ids derived from the
    give-back and the lot."""
    for entry, given in returned:
        lots = {e.entry_id: e for e in ledgers[entry.customer_id]}
        for allocation in given:
            expires_at = lots[allocation.lot_id].expires_at
            if expires_at is not None:
                await _announce_one_returned(ctx, entry, allocation, expires_at)


async def _announce_one_returned(
    ctx: Context, entry: LedgerEntry, allocation: Allocation, expires_at: datetime
) -> None:
    await emit(
        ctx.sink,
        events.PointsEarned(
            customer_id=entry.customer_id,
            points=-allocation.points,
            reason=entry.reason,
            rule_ids=[RETURN_RULE],
            available_at=entry.available_at,
            expires_at=expires_at,
        ),
        source=SOURCE,
        customer_id=entry.customer_id,
        time=ctx.now,
        cause_id=entry.entry_id,
        purpose=f"points-returned:{allocation.lot_id}",
    )


def _lots_of(program: Program, step: _Purchase, earning: Earning) -> list[tuple[LedgerEntry, str]]:
    """The lots a purchase's earning makes, each with the purpose its points.earned is
    derived for: the purchase's lot, and one for the points of campaigns with a validity of
    their own."""
    lots: list[tuple[LedgerEntry, str]] = []
    if earning.base_points > 0:
        entry = purchase_earning(
            program,
            entry_id=step.entry_id,
            customer_id=step.customer_id,
            purchase_id=step.purchase_id,
            occurred_at=step.facts.occurred_at,
            points=earning.base_points,
            rule_ids=earning.rule_ids,
            expires_at=earning.expires_at,
            partner_id=step.facts.partner_id,
        )
        lots.append((entry, "points-earned"))
    if earning.campaign_points > 0:
        assert earning.campaign_expires_at is not None
        entry = purchase_earning(
            program,
            entry_id=campaign_lot_id(step.entry_id),
            customer_id=step.customer_id,
            purchase_id=step.purchase_id,
            occurred_at=step.facts.occurred_at,
            points=earning.campaign_points,
            rule_ids=earning.campaign_rule_ids,
            expires_at=earning.campaign_expires_at,
            partner_id=step.facts.partner_id,
        )
        lots.append((entry, "campaign-points-earned"))
    return lots


def _read(batch: Sequence[CloudEvent], program: Program, now: datetime) -> list[_Step]:
    """The batch's events as the steps they are for points; a purchase in a currency other
    than the program's is refused (the consumer sets that event alone aside)."""
    steps: list[_Step] = []
    for event in batch:
        if event.type == events.POINTS_IMPORTED:
            steps.append(_import_step(event, program, now))
        elif event.type == events.ENGAGEMENT_REWARDED:
            steps.append(_grant_step(event))
        elif event.type == events.ENGAGEMENT_REWARD_REVOKED:
            steps.append(_revoke_step(event))
        elif event.type == events.PURCHASE_COMPLETED:
            steps.append(_purchase_step(event, program))
        elif event.type in (events.CUSTOMER_ENROLLED, events.CUSTOMER_UPDATED):
            steps.append(_enrolment_step(event))
        elif event.type == events.PURCHASE_REFUNDED:
            steps.append(_refund_step(event))
        elif event.type == events.TIER_CHANGED:
            change = event.data_as(events.TierChanged)
            assignment = TierAssignment(change.customer_id, change.to_tier, change.effective_at)
            steps.append(_TierChange(event, assignment))
        elif event.type in (events.SEGMENT_ENTERED, events.SEGMENT_LEFT):
            steps.append(_segment_step(event))
        elif event.type == events.CUSTOMER_ERASED:
            steps.append(_Erasure(event, event.data_as(events.CustomerErased).customer_id))
    return steps


def _segment_step(event: CloudEvent) -> _SegmentChange:
    entered = event.type == events.SEGMENT_ENTERED
    changed = event.data_as(events.SegmentEntered if entered else events.SegmentLeft)
    change = SegmentChange(changed.customer_id, changed.segment, entered, changed.changed_at)
    return _SegmentChange(event, change)


def _purchase_step(event: CloudEvent, program: Program) -> _Purchase:
    purchase = event.data_as(events.PurchaseCompleted)
    if purchase.currency != program.currency:
        raise ValueError(
            f"purchase {purchase.purchase_id} is in {purchase.currency}, "
            f"the program in {program.currency}"
        )
    facts = PurchaseFacts(
        partner_id=purchase.partner_id,
        store_id=purchase.store_id,
        occurred_at=purchase.occurred_at,
        total=purchase.total,
        items=[
            Item(item.category, item.quantity, item.unit_price) for item in purchase.items or ()
        ],
    )
    return _Purchase(
        event,
        # Keyed by the purchase, not the event: one purchase earns once whatever carried it.
        entry_id=f"purchase:{purchase.partner_id}:{purchase.purchase_id}",
        customer_id=purchase.customer_id,
        purchase_id=purchase.purchase_id,
        facts_key=purchase_key(purchase.partner_id, purchase.purchase_id),
        facts=facts,
        day=day_of(purchase.occurred_at, program.zone),
        redemption_id=purchase.redemption_id,
    )


def _enrolment_step(event: CloudEvent) -> _Enrolment:
    """A profile for a customer the ledger does not know yet enrols them (welcome bonus
    included, unless an import enrolled them without it); for a known one it changes nothing
    here."""
    # Only the enrolment says whether the welcome was asked for; an update (the enrolment
    # compacted away) welcomes as it always has.
    kind = (
        events.CustomerEnrolled
        if event.type == events.CUSTOMER_ENROLLED
        else events.CustomerProfile
    )
    profile = event.data_as(kind)
    member = Member(
        profile.customer_id,
        profile.partner_id,
        profile.enrolled_at,
        referred_by=profile.referred_by,
    )
    welcome = not isinstance(profile, events.CustomerEnrolled) or profile.welcome
    return _Enrolment(event, member, welcome)


def _import_step(event: CloudEvent, program: Program, now: datetime) -> _Import:
    """The lots of an import, their ids derived from the event (itself one per member, its id
    derived from theirs): a second delivery records nothing new."""
    imported = event.data_as(events.PointsImported)
    lots = opening_lots(
        program,
        customer_id=imported.customer_id,
        partner_id=imported.partner_id,
        imported_at=imported.imported_at,
        lots=[
            OpeningLot(derived_event_id(event.id, f"import-lot/{n}"), lot.points, lot.expires_at)
            for n, lot in enumerate(imported.lots)
        ],
        now=now,
    )
    return _Import(event, lots)


def _refund_step(event: CloudEvent) -> _Refund:
    refunded = event.data_as(events.PurchaseRefunded)
    record = RefundRecord(
        refund_key=f"{refunded.partner_id}:{refunded.refund_id}",
        purchase_key=purchase_key(refunded.partner_id, refunded.purchase_id),
        customer_id=refunded.customer_id,
        refund_id=refunded.refund_id,
        amount=refunded.amount,
        occurred_at=refunded.occurred_at,
    )
    return _Refund(event, record)


def _grant_step(event: CloudEvent) -> _Grant | _Give:
    """A grant of points, or of a catalogue's reward (a gift: its coupon)."""
    rewarded = event.data_as(events.EngagementRewarded)
    if rewarded.points is None:
        assert rewarded.reward_id is not None  # the event holds one or the other
        gift = Gift(
            grant_id=rewarded.grant_id,
            customer_id=rewarded.customer_id,
            reason=rewarded.reason,
            rule_id=rewarded.rule_id,
            name=rewarded.name,
            reward_id=rewarded.reward_id,
            granted_at=rewarded.granted_at,
            purchase_id=rewarded.purchase_id,
        )
        return _Give(event, gift)
    grant = Grant(
        grant_id=rewarded.grant_id,
        customer_id=rewarded.customer_id,
        reason=rewarded.reason,
        rule_id=rewarded.rule_id,
        name=rewarded.name,
        points=rewarded.points,
        granted_at=rewarded.granted_at,
        purchase_id=rewarded.purchase_id,
    )
    return _Grant(event, grant)


def _revoke_step(event: CloudEvent) -> _Revoke:
    revoked = event.data_as(events.EngagementRewardRevoked)
    revocation = Revocation(
        grant_id=revoked.grant_id,
        customer_id=revoked.customer_id,
        revoked_at=revoked.revoked_at,
        refund_id=revoked.refund_id,
    )
    return _Revoke(event, revocation)
