"""Events in: insights keeps each event's facts (never a copy of another service's state), then
re-evaluates the members the batch touched, as of now, under their row locks: the segments
they entered or left go to the outbox in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from services.insights import ports
from services.insights.domain.features import features
from services.insights.domain.model import Rules, purchase_key
from services.insights.domain.segments import Change, changes, with_segments
from services.insights.ports import (
    CampaignPurchase,
    Facts,
    FeedbackFact,
    Movement,
    Perk,
    Profile,
    PurchaseFact,
    RefundFact,
    Revocation,
    TierFact,
)
from shared.messaging import events
from shared.messaging.events import CloudEvent, feedback_key
from shared.messaging.outbox import EventSink, emit

SOURCE = "insights"

HANDLED_TYPES = frozenset(
    {
        events.CUSTOMER_ENROLLED,
        events.CUSTOMER_UPDATED,
        events.CUSTOMER_ERASED,
        events.PURCHASE_COMPLETED,
        events.PURCHASE_REFUNDED,
        events.POINTS_IMPORTED,
        events.POINTS_EARNED,
        events.POINTS_REDEEMED,
        events.POINTS_REVERSED,
        events.POINTS_EXPIRED,
        events.POINTS_ADJUSTED,
        events.COUPON_REDEEMED,
        events.TIER_CHANGED,
        events.ENGAGEMENT_REWARDED,
        events.ENGAGEMENT_REWARD_REVOKED,
        events.FEEDBACK_RECEIVED,
    }
)
# Points out of a balance: the movement is kept negative.
_SPENT = {
    events.POINTS_REDEEMED: "redeemed",
    events.POINTS_REVERSED: "reversed",
    events.POINTS_EXPIRED: "expired",
}


@dataclass(frozen=True)
class Context:
    insights: ports.ConsumerRepository
    sink: EventSink
    now: datetime
    rules: Rules


@dataclass
class _Read:
    facts: Facts = field(default_factory=lambda: Facts([], [], [], [], [], [], [], [], []))
    erased: dict[str, datetime] = field(default_factory=dict)
    customers: set[str] = field(default_factory=set)


async def apply_batch(batch: Sequence[CloudEvent], ctx: Context) -> None:
    read = _read(batch)
    gone = await ctx.insights.erased_among(read.customers) | set(read.erased)
    facts = _without(read.facts, gone)
    referrers = {p.referred_by for p in facts.profiles if p.referred_by} - gone
    touched = sorted((read.customers | referrers) - gone)
    await ctx.insights.lock_members(touched)
    await ctx.insights.record(facts)
    await ctx.insights.erase(read.erased)
    await reevaluate(touched, ctx.now, ctx.rules, ctx.insights, ctx.sink, now=ctx.now)


async def reevaluate(
    customer_ids: Sequence[str],
    as_of: datetime,
    rules: Rules,
    repository: ports.SegmentWriter,
    sink: EventSink,
    *,
    now: datetime,
) -> list[Change]:
    """Each member's segments as of the instant against those kept: the entries and exits are
    written and published, stamped `now` (when the change was found, whatever instant it was
    looked at as of: the read models keep the newest, so a job run as of another date and
    then as of today leaves them as of today). The caller holds the members' locks."""
    if not customer_ids:
        return []
    facts = await repository.facts_of(customer_ids, as_of, rules)
    breakpoints = await repository.breakpoints()
    custom = await repository.custom_segments()
    kept = await repository.segments_of(customer_ids)
    found: list[Change] = []
    for customer_id in customer_ids:
        if (member := facts.get(customer_id)) is None:
            continue
        now_in = with_segments(features(member, as_of, rules, breakpoints), custom).segments
        found += changes(customer_id, now_in, kept.get(customer_id, set()))
    await repository.apply_changes(found, now)
    for change in found:
        await _publish(change, now, sink)
    return found


async def _publish(change: Change, at: datetime, sink: EventSink) -> None:
    kind = events.SegmentEntered if change.entered else events.SegmentLeft
    payload = kind(
        customer_id=change.customer_id,
        segment=change.segment,
        changed_at=at,
        reasons=[reason[:200] for reason in change.reasons[:10]],
    )
    await emit(
        sink,
        payload,
        source=SOURCE,
        customer_id=change.customer_id,
        time=at,
        cause_id=f"{change.customer_id}:{change.segment}:{at.isoformat()}",
        purpose="segment-entered" if change.entered else "segment-left",
    )


def _read(batch: Sequence[CloudEvent]) -> _Read:
    read = _Read()
    for event in batch:
        payload = event.payload()
        customer_id = getattr(payload, "customer_id", None)
        if isinstance(customer_id, str):
            read.customers.add(customer_id)
        if isinstance(payload, events.CustomerErased):
            read.erased[payload.customer_id] = event.time
        else:
            _READERS[type(payload)](event, payload, read.facts)
    return read


def _profile(event: CloudEvent, payload: events.Payload, facts: Facts) -> None:
    assert isinstance(payload, events.CustomerProfile)
    facts.profiles.append(
        Profile(
            customer_id=payload.customer_id,
            partner_id=payload.partner_id,
            enrolled_at=payload.enrolled_at,
            referred_by=payload.referred_by,
            version=payload.version,
        )
    )


def _purchase(event: CloudEvent, payload: events.Payload, facts: Facts) -> None:
    assert isinstance(payload, events.PurchaseCompleted)
    facts.purchases.append(
        PurchaseFact(
            purchase_key=purchase_key(payload.partner_id, payload.purchase_id),
            customer_id=payload.customer_id,
            purchase_id=payload.purchase_id,
            partner_id=payload.partner_id,
            store_id=payload.store_id,
            occurred_at=payload.occurred_at,
            total=payload.total,
        )
    )


def _refund(event: CloudEvent, payload: events.Payload, facts: Facts) -> None:
    assert isinstance(payload, events.PurchaseRefunded)
    facts.refunds.append(
        RefundFact(
            refund_key=purchase_key(payload.partner_id, payload.refund_id),
            purchase_key=purchase_key(payload.partner_id, payload.purchase_id),
            customer_id=payload.customer_id,
            amount=payload.amount,
            occurred_at=payload.occurred_at,
        )
    )


def _imported(event: CloudEvent, payload: events.Payload, facts: Facts) -> None:
    assert isinstance(payload, events.PointsImported)
    points = sum(lot.points for lot in payload.lots)
    if points:
        facts.movements.append(
            Movement(event.id, payload.customer_id, "imported", points, payload.imported_at)
        )
    if payload.tier is not None:
        since = payload.tier_since or payload.imported_at
        facts.tiers.append(TierFact(payload.customer_id, since, payload.tier))


def _earned(event: CloudEvent, payload: events.Payload, facts: Facts) -> None:
    assert isinstance(payload, events.PointsEarned)
    facts.movements.append(
        Movement(event.id, payload.customer_id, "earned", payload.points, event.time)
    )
    boosted = any(rule.startswith(("campaign:", "offer:")) for rule in payload.rule_ids)
    if payload.purchase_id is not None and boosted:
        facts.campaign_purchases.append(CampaignPurchase(payload.customer_id, payload.purchase_id))


def _spent(event: CloudEvent, payload: events.Payload, facts: Facts) -> None:
    assert isinstance(payload, events.PointsRedeemed | events.PointsReversed | events.PointsExpired)
    kind = _SPENT[event.type]
    facts.movements.append(
        Movement(event.id, payload.customer_id, kind, -payload.points, event.time)
    )


def _adjusted(event: CloudEvent, payload: events.Payload, facts: Facts) -> None:
    assert isinstance(payload, events.PointsAdjusted)
    facts.movements.append(
        Movement(event.id, payload.customer_id, "adjusted", payload.points, event.time)
    )


def _coupon_redeemed(event: CloudEvent, payload: events.Payload, facts: Facts) -> None:
    assert isinstance(payload, events.CouponRedeemed)
    key = f"coupon:{payload.coupon_id}"
    facts.perks.append(Perk(key, payload.customer_id, "coupon", payload.redeemed_at))


def _tier(event: CloudEvent, payload: events.Payload, facts: Facts) -> None:
    assert isinstance(payload, events.TierChanged)
    facts.tiers.append(TierFact(payload.customer_id, payload.effective_at, payload.to_tier))


def _rewarded(event: CloudEvent, payload: events.Payload, facts: Facts) -> None:
    assert isinstance(payload, events.EngagementRewarded)
    key = f"grant:{payload.grant_id}"
    facts.perks.append(Perk(key, payload.customer_id, payload.reason, payload.granted_at))


def _revoked(event: CloudEvent, payload: events.Payload, facts: Facts) -> None:
    assert isinstance(payload, events.EngagementRewardRevoked)
    key = f"grant:{payload.grant_id}"
    facts.revocations.append(Revocation(key, payload.customer_id, payload.revoked_at))


def _feedback(event: CloudEvent, payload: events.Payload, facts: Facts) -> None:
    assert isinstance(payload, events.FeedbackReceived)
    facts.feedback.append(
        FeedbackFact(
            feedback_key=feedback_key(payload.partner_id, payload.feedback_id),
            customer_id=payload.customer_id,
            partner_id=payload.partner_id,
            kind=payload.kind,
            score=payload.score,
            given_at=payload.given_at,
        )
    )


_READERS = {
    events.CustomerEnrolled: _profile,
    events.CustomerUpdated: _profile,
    events.PurchaseCompleted: _purchase,
    events.PurchaseRefunded: _refund,
    events.PointsImported: _imported,
    events.PointsEarned: _earned,
    events.PointsRedeemed: _spent,
    events.PointsReversed: _spent,
    events.PointsExpired: _spent,
    events.PointsAdjusted: _adjusted,
    events.CouponRedeemed: _coupon_redeemed,
    events.TierChanged: _tier,
    events.EngagementRewarded: _rewarded,
    events.EngagementRewardRevoked: _revoked,
    events.FeedbackReceived: _feedback,
}


def _without(facts: Facts, gone: set[str]) -> Facts:
    """The facts of members not erased (an event after an erasure is dropped)."""
    if not gone:
        return facts
    kept: dict[str, list[Any]] = {
        kind.name: [fact for fact in getattr(facts, kind.name) if fact.customer_id not in gone]
        for kind in fields(Facts)
    }
    return Facts(**kept)
