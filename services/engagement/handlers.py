"""Events in: what engagement does with a batch of new events. The batch's state is loaded in
a few set-based reads, the rules applied in memory in event order, and written with multi-row
statements; the rewards and messages it causes go to the outbox in the same transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from services.engagement import ports
from services.engagement.domain import birthdays as birthday_rules
from services.engagement.domain import challenges as challenge_rules
from services.engagement.domain import feedback as feedback_rules
from services.engagement.domain import stamps as stamp_rules
from services.engagement.domain import surprises as surprise_rules
from services.engagement.domain.birthdays import BirthdayReward, Celebrated, birthday_of
from services.engagement.domain.challenges import ChallengeRule
from services.engagement.domain.feedback import Feedback
from services.engagement.domain.model import (
    Item,
    Membership,
    Purchase,
    Reward,
    newest,
    purchase_key,
    refund_key,
    tier_at_least,
)
from services.engagement.domain.stamps import Card, Completion, StampCardRule
from services.engagement.domain.surprises import Candidate
from services.engagement.ports import (
    Badge,
    BirthdayGrant,
    CardKey,
    ChallengeKey,
    CompletedCard,
    CompletionKey,
    Counted,
    FeedbackGrant,
    FirstPurchase,
    StampPurchase,
    SurpriseWin,
)
from shared.messaging import events
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import EventSink, emit

SOURCE = "engagement"

T = TypeVar("T")

HANDLED_TYPES = frozenset(
    {
        events.CUSTOMER_ENROLLED,
        events.CUSTOMER_UPDATED,
        events.CUSTOMER_ERASED,
        events.PURCHASE_COMPLETED,
        events.PURCHASE_REFUNDED,
        events.TIER_CHANGED,
        events.FEEDBACK_RECEIVED,
        events.SEGMENT_ENTERED,
        events.SEGMENT_LEFT,
    }
)


@dataclass(frozen=True)
class Context:
    engagement: ports.ConsumerRepository
    sink: EventSink
    now: datetime
    # The program's secret the surprise draws are keyed with (the settings require it,
    # so only a test without surprise rules goes without).
    surprise_key: bytes | None = None


@dataclass(frozen=True)
class Refund:
    refund_key: str
    purchase_key: str
    customer_id: str
    refund_id: str
    amount: Decimal
    occurred_at: datetime


@dataclass
class _Batch:
    """The batch's events by what engagement does with them, in event order."""

    enrolled: dict[str, datetime] = field(default_factory=dict)
    referred_by: dict[str, str] = field(default_factory=dict)  # member -> referrer
    tiers: dict[str, str] = field(default_factory=dict)
    purchases: list[Purchase] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    erased: set[str] = field(default_factory=set)
    birthdays: dict[str, ports.ProfileBirthday] = field(default_factory=dict)
    feedback: list[Feedback] = field(default_factory=list)
    segments: list[Membership] = field(default_factory=list)


@dataclass(frozen=True)
class Audience:
    """Who the batch's purchases and referrals are by, as rules target them: each member's
    tier and the segments they are in when engagement applies the batch."""

    tiers: dict[str, str | None]
    segments: dict[str, frozenset[str]]

    def tier(self, customer_id: str) -> str | None:
        return self.tiers.get(customer_id)

    def segments_of(self, customer_id: str) -> frozenset[str]:
        return self.segments.get(customer_id, frozenset())


async def apply_batch(batch: Sequence[CloudEvent], ctx: Context) -> None:
    read = _read(batch)
    referrals = await ctx.engagement.enrol(read.enrolled, read.referred_by)
    await _note_birthdays(read, ctx)
    await ctx.engagement.set_tiers(read.tiers)
    # Before the purchases: a targeted rule reads the membership as of the whole batch.
    await ctx.engagement.note_segments(list(newest(read.segments).values()))
    if read.purchases:
        firsts = _first_of_each(read.purchases, lambda p: p.customer_id)
        referrals += await ctx.engagement.note_first_purchases(firsts)
    if read.purchases or referrals:
        buyers = {p.customer_id for p in read.purchases} | {r.referrer for r in referrals}
        audience = Audience(
            await ctx.engagement.tiers_of(buyers), await ctx.engagement.segments_of(buyers)
        )
        await _stamp(read.purchases, audience, ctx)
        await _count(read.purchases, referrals, audience, ctx)
        await _surprise(read.purchases, audience, ctx)
    if read.refunds:
        await _refund(read.refunds, ctx)
    await _feedback(read, ctx)
    await ctx.engagement.erase(read.erased)


def _read(batch: Sequence[CloudEvent]) -> _Batch:
    """The batch's events, each purchase, refund and referral once (the first event carrying
    it): what the repository records once per key must be applied once too."""
    read = _Batch()
    for event in batch:
        if event.type in (events.CUSTOMER_ENROLLED, events.CUSTOMER_UPDATED):
            profile = event.data_as(events.CustomerProfile)
            read.enrolled[profile.customer_id] = profile.enrolled_at
            _keep_birthday(read.birthdays, profile)
            if profile.referred_by is not None:
                read.referred_by.setdefault(profile.customer_id, profile.referred_by)
        elif event.type == events.TIER_CHANGED:
            changed = event.data_as(events.TierChanged)
            read.tiers[changed.customer_id] = changed.to_tier
        elif event.type == events.PURCHASE_COMPLETED:
            read.purchases.append(_purchase(event.data_as(events.PurchaseCompleted)))
        elif event.type == events.PURCHASE_REFUNDED:
            read.refunds.append(_refund_of(event.data_as(events.PurchaseRefunded)))
        elif event.type == events.CUSTOMER_ERASED:
            read.erased.add(event.data_as(events.CustomerErased).customer_id)
        elif event.type == events.FEEDBACK_RECEIVED:
            read.feedback.append(_feedback_of(event.data_as(events.FeedbackReceived)))
        elif event.type in (events.SEGMENT_ENTERED, events.SEGMENT_LEFT):
            read.segments.append(_membership(event))
    read.purchases = _first_of_each(read.purchases, lambda p: p.key)
    read.refunds = _first_of_each(read.refunds, lambda r: r.refund_key)
    return read


def _first_of_each(items: list[T], key: Callable[[T], str]) -> list[T]:
    """`items` in order, without those whose key an earlier one had."""
    firsts: dict[str, T] = {}
    for item in items:
        firsts.setdefault(key(item), item)
    return list(firsts.values())


def _membership(event: CloudEvent) -> Membership:
    entered = event.type == events.SEGMENT_ENTERED
    changed = event.data_as(events.SegmentEntered if entered else events.SegmentLeft)
    return Membership(changed.customer_id, changed.segment, entered, changed.changed_at)


def _purchase(purchase: events.PurchaseCompleted) -> Purchase:
    return Purchase(
        purchase_id=purchase.purchase_id,
        customer_id=purchase.customer_id,
        partner_id=purchase.partner_id,
        store_id=purchase.store_id,
        occurred_at=purchase.occurred_at,
        total=purchase.total,
        items=tuple(
            Item(sku=i.sku, category=i.category, quantity=i.quantity, unit_price=i.unit_price)
            for i in purchase.items or ()
        ),
    )


def _refund_of(refund: events.PurchaseRefunded) -> Refund:
    return Refund(
        refund_key=refund_key(refund.partner_id, refund.refund_id),
        purchase_key=purchase_key(refund.partner_id, refund.purchase_id),
        customer_id=refund.customer_id,
        refund_id=refund.refund_id,
        amount=refund.amount,
        occurred_at=refund.occurred_at,
    )


# Stamp cards ------------------------------------------------------------------------------


async def _stamp(purchases: list[Purchase], audience: Audience, ctx: Context) -> None:
    """Each purchase's stamps on each card it qualifies for, once per purchase; a full card
    completes (its reward granted) and a new one begins with the surplus."""
    if not purchases:
        return
    rules = await ctx.engagement.stamp_cards_in_force(min(p.occurred_at for p in purchases))
    given = [
        (rule, purchase, stamps)
        for purchase in purchases
        for rule in rules
        if (
            stamps := stamp_rules.stamps_for(
                rule,
                purchase,
                audience.tier(purchase.customer_id),
                audience.segments_of(purchase.customer_id),
            )
        )
    ]
    recorded = await ctx.engagement.record_stamps(
        [StampPurchase(rule.card_id, p.customer_id, p.key, n, p.total) for rule, p, n in given]
    )
    new = [g for g in given if (g[0].card_id, g[1].key) in recorded]
    cards = await ctx.engagement.lock_cards({(rule.card_id, p.customer_id) for rule, p, _ in new})
    completed: list[tuple[StampCardRule, Purchase, Completion]] = []
    for rule, purchase, stamps in new:
        key = (rule.card_id, purchase.customer_id)
        cards[key], done = stamp_rules.add_stamps(rule, cards[key], stamps, purchase.key)
        completed.extend((rule, purchase, completion) for completion in done)
    await ctx.engagement.save_cards(list(cards.values()))
    await ctx.engagement.add_completions(
        [
            CompletedCard(c.grant_id, rule.card_id, p.customer_id, c.number, p.key, p.occurred_at)
            for rule, p, c in completed
        ]
    )
    for rule, purchase, completion in completed:
        await _announce_card(rule, purchase, completion, ctx)


async def _announce_card(
    rule: StampCardRule, purchase: Purchase, completion: Completion, ctx: Context
) -> None:
    grant_id = completion.grant_id
    await _grant(
        ctx,
        grant_id=grant_id,
        customer_id=purchase.customer_id,
        reason="stamp_card",
        rule_id=rule.card_id,
        name=rule.name,
        reward=rule.reward,
        purchase_id=purchase.purchase_id,
        at=purchase.occurred_at,
    )
    completed = events.StampCardCompleted(
        customer_id=purchase.customer_id,
        card_id=rule.card_id,
        name=rule.name,
        stamps_required=rule.stamps_required,
        completed_count=completion.number,
        grant_id=grant_id,
        purchase_id=purchase.purchase_id,
        completed_at=purchase.occurred_at,
        points=rule.reward.points,
        reward_id=rule.reward.reward_id,
    )
    await _emit(ctx, completed, purchase.customer_id, grant_id, "stamp-card-completed")


async def _refund(refunds: list[Refund], ctx: Context) -> None:
    """A refund takes back, in proportion, the stamps its purchase gave: from the current
    card, or by reversing the newest completed cards (their rewards revoked); and the
    purchase's part in challenges still open."""
    new = await ctx.engagement.record_refunds({r.refund_key: r.customer_id for r in refunds})
    refunds = [r for r in refunds if r.refund_key in new]
    if not refunds:
        return
    refunded: dict[str, Decimal] = {}
    for refund in refunds:
        refunded[refund.purchase_key] = (
            refunded.get(refund.purchase_key, Decimal(0)) + refund.amount
        )
    await ctx.engagement.refund_contributions(refunded)
    await _revoke_surprises(refunds, refunded, ctx)
    given = {
        (g.card_id, g.purchase_key): g for g in await ctx.engagement.stamp_purchases_of(refunded)
    }
    if not given:
        return
    rules = await ctx.engagement.stamp_cards_by_id({card_id for card_id, _ in given})
    cards = await ctx.engagement.lock_cards({(g.card_id, g.customer_id) for g in given.values()})
    taken: dict[CompletionKey, Refund] = {}
    for refund in refunds:
        for key in [k for k in given if k[1] == refund.purchase_key]:
            given[key], revoked = _take_back(rules[key[0]], given[key], refund, cards)
            taken.update(((key[0], refund.customer_id, number), refund) for number in revoked)
    await ctx.engagement.save_refunded(list(given.values()))
    await ctx.engagement.save_cards(list(cards.values()))
    grants = await ctx.engagement.revoke_completions(taken, ctx.now)
    for completion, grant_id in grants.items():
        await _revoke(taken[completion], grant_id, ctx)


def _take_back(
    rule: StampCardRule, bought: StampPurchase, refund: Refund, cards: dict[CardKey, Card]
) -> tuple[StampPurchase, list[int]]:
    """The stamps the refund takes back from the card `bought` gave them to, and the numbers of
    the completions that reverses (newest first)."""
    stamps = stamp_rules.stamps_refunded(bought.given, bought.total, bought.refunded, refund.amount)
    key = (bought.card_id, bought.customer_id)
    cards[key], revoked = stamp_rules.take_back(rule, cards[key], stamps)
    return replace(bought, refunded=min(bought.total, bought.refunded + refund.amount)), revoked


async def _revoke(refund: Refund, grant_id: str, ctx: Context) -> None:
    revoked = events.EngagementRewardRevoked(
        grant_id=grant_id,
        customer_id=refund.customer_id,
        refund_id=refund.refund_id,
        revoked_at=refund.occurred_at,
    )
    await _emit(ctx, revoked, refund.customer_id, f"{grant_id}:{refund.refund_key}", "revoked")


# Challenges -------------------------------------------------------------------------------


async def _count(
    purchases: list[Purchase],
    referrals: list[FirstPurchase],
    audience: Audience,
    ctx: Context,
) -> None:
    """What the batch's purchases and referrals add to members' challenges; each challenge
    met is completed once: its reward granted, its badge earned. A referral counts for the
    referrer once the member they referred made a first purchase (a referral that never buys
    farms nothing), from that purchase on; a whole refund of it takes it back."""
    instants = [p.occurred_at for p in purchases] + [r.occurred_at for r in referrals]
    rules = await ctx.engagement.challenges_in_force(min(instants))
    counted = [
        *_purchase_counts(rules, purchases, audience),
        *_referral_counts(rules, referrals, audience),
    ]
    recorded = await ctx.engagement.record_contributions(counted)
    touched = {
        (c.challenge_id, c.customer_id)
        for c in counted
        if (c.challenge_id, c.customer_id, c.source_key) in recorded
    }
    still_open = await ctx.engagement.open_challenges(touched)
    contributions = await ctx.engagement.contributions_of(still_open)
    by_id = {rule.challenge_id: rule for rule in rules}
    met = [
        key
        for key in sorted(still_open)
        if challenge_rules.is_met(by_id[key[0]], contributions.get(key, []))
    ]
    await ctx.engagement.complete_challenges(met, ctx.now)
    earned_at: dict[ChallengeKey, datetime] = {}
    for c in counted:
        key = (c.challenge_id, c.customer_id)
        earned_at[key] = max(
            earned_at.get(key, c.contribution.occurred_at), c.contribution.occurred_at
        )
    badges = [
        Badge(customer_id, rule.badge, rule.challenge_id, earned_at[(challenge_id, customer_id)])
        for challenge_id, customer_id in met
        if (rule := by_id[challenge_id]).badge is not None
    ]
    new_badges = await ctx.engagement.add_badges(badges)
    for challenge_id, customer_id in met:
        at = earned_at[(challenge_id, customer_id)]
        await _announce_challenge(by_id[challenge_id], customer_id, at, ctx)
    for badge in badges:
        if (badge.customer_id, badge.badge) in new_badges:
            await _announce_badge(badge, ctx)


def _purchase_counts(
    rules: list[ChallengeRule], purchases: list[Purchase], audience: Audience
) -> list[Counted]:
    return [
        Counted(
            rule.challenge_id,
            purchase.customer_id,
            purchase.key,
            contribution,
            purchase.total,
        )
        for purchase in purchases
        for rule in rules
        if (
            contribution := challenge_rules.contribution_of(
                rule,
                purchase,
                audience.tier(purchase.customer_id),
                audience.segments_of(purchase.customer_id),
            )
        )
        is not None
    ]


def _referral_counts(
    rules: list[ChallengeRule], referrals: list[FirstPurchase], audience: Audience
) -> list[Counted]:
    """Keyed by the referred member's first purchase: its refunds reach the referral too."""
    return [
        Counted(rule.challenge_id, r.referrer, r.purchase_key, contribution, r.total)
        for r in referrals
        for rule in rules
        if (
            contribution := challenge_rules.referral_contribution(
                rule,
                r.member,
                r.occurred_at,
                audience.tier(r.referrer),
                audience.segments_of(r.referrer),
            )
        )
        is not None
    ]


async def _announce_challenge(
    rule: ChallengeRule, customer_id: str, at: datetime, ctx: Context
) -> None:
    grant_id = challenge_rules.challenge_grant_id(rule.challenge_id, customer_id)
    if rule.reward is not None:
        await _grant(
            ctx,
            grant_id=grant_id,
            customer_id=customer_id,
            reason="challenge",
            rule_id=rule.challenge_id,
            name=rule.name,
            reward=rule.reward,
            purchase_id=None,
            at=at,
        )
    completed = events.ChallengeCompleted(
        customer_id=customer_id,
        challenge_id=rule.challenge_id,
        name=rule.name,
        badge=rule.badge,
        grant_id=grant_id if rule.reward is not None else None,
        completed_at=at,
        points=rule.reward.points if rule.reward is not None else None,
        reward_id=rule.reward.reward_id if rule.reward is not None else None,
    )
    await _emit(ctx, completed, customer_id, grant_id, "challenge-completed")


async def _announce_badge(badge: Badge, ctx: Context) -> None:
    earned = events.BadgeEarned(
        customer_id=badge.customer_id,
        badge=badge.badge,
        challenge_id=badge.challenge_id,
        earned_at=badge.earned_at,
    )
    cause = f"{badge.customer_id}:{badge.badge}"
    await _emit(ctx, earned, badge.customer_id, cause, "badge-earned")


# Surprises -------------------------------------------------------------


async def _surprise(purchases: list[Purchase], audience: Audience, ctx: Context) -> None:
    """Each purchase's draw for each surprise rule it qualifies for; a win is granted unless
    the member's cooldown or the rule's daily budget holds it back, once per rule and
    purchase. The (rule, member) pairs and the budget days are locked first, so two consumers
    (a rebalance) cannot both admit a win past a cooldown or a budget."""
    if not purchases:
        return
    rules = await ctx.engagement.surprises_in_force(min(p.occurred_at for p in purchases))
    if not rules:
        return
    if ctx.surprise_key is None:
        raise RuntimeError("surprise rules but no surprise secret to draw with")
    key = ctx.surprise_key
    drawn = [
        (rule, purchase)
        for purchase in purchases
        for rule in rules
        if surprise_rules.qualifies(
            rule,
            purchase,
            audience.tier(purchase.customer_id),
            audience.segments_of(purchase.customer_id),
        )
        and surprise_rules.draw(key, rule.surprise_id, purchase.key).wins(rule.chance)
    ]
    if not drawn:
        return
    wins = await ctx.engagement.surprise_wins_of({(r.surprise_id, p.customer_id) for r, p in drawn})
    spent = await ctx.engagement.lock_budgets(
        {
            (r.surprise_id, surprise_rules.budget_day(p.occurred_at))
            for r, p in drawn
            if r.daily_budget is not None
        }
    )
    candidates = [Candidate(r, p.customer_id, p.key, p.occurred_at) for r, p in drawn]
    admitted, spending = surprise_rules.admit(candidates, wins, spent)
    by_key = {(r.surprise_id, p.key): (r, p) for r, p in drawn}
    won = [by_key[(w.surprise_id, w.purchase_key)] for w in admitted]
    new = await ctx.engagement.record_surprise_wins(
        [
            SurpriseWin(
                r.surprise_id,
                p.customer_id,
                p.key,
                surprise_rules.surprise_grant_id(r.surprise_id, p.key),
                p.occurred_at,
                p.total,
            )
            for r, p in won
        ]
    )
    await ctx.engagement.save_budgets({k: v for k, v in spending.items() if k in spent})
    for rule, purchase in won:
        if (rule.surprise_id, purchase.key) in new:
            await _grant(
                ctx,
                grant_id=surprise_rules.surprise_grant_id(rule.surprise_id, purchase.key),
                customer_id=purchase.customer_id,
                reason="surprise",
                rule_id=rule.surprise_id,
                name=rule.name,
                reward=rule.reward,
                purchase_id=purchase.purchase_id,
                at=purchase.occurred_at,
            )


async def _revoke_surprises(
    refunds: list[Refund], refunded: dict[str, Decimal], ctx: Context
) -> None:
    """A surprise is taken back when its purchase is wholly refunded (the refunds of it,
    read once each, reach its total): the refund that got there revokes it. A partial refund
    keeps it; a win taken back still counts for the member's cooldown and its day's budget."""
    revoked = await ctx.engagement.refund_surprise_wins(refunded, ctx.now)
    last = {refund.purchase_key: refund for refund in refunds}
    for win in revoked:
        await _revoke(last[win.purchase_key], win.grant_id, ctx)


# Birthdays -------------------------------------------------------------


async def _note_birthdays(read: _Batch, ctx: Context) -> None:
    """The members' birthdays and time zones, for the birthday-rewards job: each member's
    from their latest profile (the year of the birthday is not kept)."""
    await ctx.engagement.note_birthdays(read.birthdays)


def _keep_birthday(kept: dict[str, ports.ProfileBirthday], profile: events.CustomerProfile) -> None:
    """The profile's birthday and time zone, unless the batch carried a later version."""
    noted = ports.ProfileBirthday(birthday_of(profile.birthday), profile.time_zone, profile.version)
    earlier = kept.get(profile.customer_id)
    if earlier is None or earlier.version is None or (noted.version or 0) >= earlier.version:
        kept[profile.customer_id] = noted


@dataclass(frozen=True)
class BirthdayContext:
    birthdays: ports.BirthdayRepository
    sink: EventSink
    now: datetime


@dataclass(frozen=True)
class BirthdaysDone:
    last_customer_id: str | None  # where the next chunk starts; None when none was left
    members: int  # whose birthday it is, looked at
    rewards: int  # granted now


async def grant_birthdays(
    reward: BirthdayReward,
    celebrated: Sequence[Celebrated],
    as_of: datetime,
    after: str,
    limit: int,
    ctx: BirthdayContext,
) -> BirthdaysDone:
    """One chunk of the members whose birthday it is as of `as_of` in their time zone and who
    have no birthday reward for its year: the reward granted (to those of its `min_tier`),
    once per member and year whatever reruns it."""
    celebrants = await ctx.birthdays.celebrants(celebrated, after, limit)
    if not celebrants:
        return BirthdaysDone(None, 0, 0)
    due = [
        BirthdayGrant(c.customer_id, c.year, birthday_rules.grant_id(c.customer_id, c.year))
        for c in celebrants
        if tier_at_least(c.tier, reward.min_tier)
    ]
    new = await ctx.birthdays.record_grants(due, as_of)
    for grant in due:
        if grant.grant_id in new:
            rewarded = events.EngagementRewarded(
                grant_id=grant.grant_id,
                customer_id=grant.customer_id,
                reason="birthday",
                rule_id=birthday_rules.RULE_ID,
                name=birthday_rules.NAME,
                points=reward.reward.points,
                reward_id=reward.reward.reward_id,
                granted_at=as_of,
            )
            await emit(
                ctx.sink,
                rewarded,
                source=SOURCE,
                customer_id=grant.customer_id,
                time=ctx.now,
                cause_id=grant.grant_id,
                purpose="rewarded",
            )
    return BirthdaysDone(celebrants[-1].customer_id, len(celebrants), len(new))


# Feedback --------------------------------------------------------------


async def _feedback(read: _Batch, ctx: Context) -> None:
    """Each feedback kept once (its comment only here; never one of a member erased, in this
    batch or before), and the feedback reward granted once per purchase a new feedback names
    (`domain/feedback.py`)."""
    await ctx.engagement.note_feedback_erased(read.erased, ctx.now)
    given = [
        f
        for f in _first_of_each(read.feedback, lambda f: f.key)
        if f.customer_id not in read.erased
    ]
    if not given:
        return
    kept = await ctx.engagement.record_feedback(given)
    new = [f for f in given if f.key in kept]
    config = await ctx.engagement.feedback_reward() if new else None
    if config is None:
        return
    rewarded = feedback_rules.rewarded_once_per_purchase(new, config)
    granted = await ctx.engagement.record_feedback_rewards(
        [
            FeedbackGrant(
                purchase_key=key,
                customer_id=f.customer_id,
                feedback_key=f.key,
                grant_id=feedback_rules.feedback_grant_id(key),
                granted_at=f.given_at,
            )
            for f in rewarded
            if (key := f.purchase_key) is not None
        ]
    )
    for f in rewarded:
        if (key := f.purchase_key) is not None and key in granted:
            await _grant(
                ctx,
                grant_id=feedback_rules.feedback_grant_id(key),
                customer_id=f.customer_id,
                reason="feedback",
                rule_id=feedback_rules.RULE_ID,
                name=config.name,
                reward=config.reward,
                purchase_id=f.purchase_id,
                at=f.given_at,
            )


def _feedback_of(received: events.FeedbackReceived) -> Feedback:
    return Feedback(
        feedback_id=received.feedback_id,
        partner_id=received.partner_id,
        customer_id=received.customer_id,
        kind=received.kind,
        given_at=received.given_at,
        store_id=received.store_id,
        purchase_id=received.purchase_id,
        score=received.score,
        comment=received.comment,
    )


# Events -----------------------------------------------------------------------------------


async def _grant(
    ctx: Context,
    *,
    grant_id: str,
    customer_id: str,
    reason: events.EngagementReason,
    rule_id: str,
    name: str,
    reward: Reward,
    purchase_id: str | None,
    at: datetime,
) -> None:
    rewarded = events.EngagementRewarded(
        grant_id=grant_id,
        customer_id=customer_id,
        reason=reason,
        rule_id=rule_id,
        name=name,
        points=reward.points,
        reward_id=reward.reward_id,
        purchase_id=purchase_id,
        granted_at=at,
    )
    await _emit(ctx, rewarded, customer_id, grant_id, "rewarded")


async def _emit(
    ctx: Context, payload: events.Payload, customer_id: str, cause_id: str, purpose: str
) -> None:
    await emit(
        ctx.sink,
        payload,
        source=SOURCE,
        customer_id=customer_id,
        time=ctx.now,
        cause_id=cause_id,
        purpose=purpose,
    )
