"""A member's features as of an instant: RFM with quintile scores, lifecycle stage and the six
types of loyal customer, each with the reasons that put the member there."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from services.insights.domain.model import (
    Activity,
    Breakpoints,
    Features,
    Lifecycle,
    LoyaltyType,
    MemberFacts,
    Rfm,
    Rules,
)

DAY = timedelta(days=1)


def features(
    facts: MemberFacts, as_of: datetime, rules: Rules, breakpoints: Breakpoints | None
) -> Features:
    rfm = scored(rfm_of(facts.activity, as_of), breakpoints)
    stage, why = lifecycle(facts.activity, facts.enrolled_at, as_of, rules)
    return Features(
        customer_id=facts.customer_id,
        as_of=as_of,
        rfm=rfm,
        lifecycle=stage,
        lifecycle_reason=why,
        loyalty_types=loyalty_types(facts, rfm, rules),
        tier=facts.tier or rules.entry_tier,
    )


def days_between(earlier: datetime, later: datetime) -> int:
    """Whole days, as the SQL of the breakpoints counts them."""
    return int((later - earlier) / DAY)


def rfm_of(activity: Activity, as_of: datetime) -> Rfm:
    last = activity.last_purchase_at
    return Rfm(
        recency_days=None if last is None else days_between(last, as_of),
        frequency=activity.frequency,
        monetary=activity.monetary,
    )


def scored(rfm: Rfm, breakpoints: Breakpoints | None) -> Rfm:
    """Scores 1-5 by the program's quintiles: 5 the most recent, frequent, valuable fifth. A
    member who did not buy in the window scores 1 on each."""
    if breakpoints is None:
        return rfm
    if rfm.frequency == 0 or rfm.recency_days is None:
        return Rfm(rfm.recency_days, rfm.frequency, rfm.monetary, 1, 1, 1)
    return Rfm(
        recency_days=rfm.recency_days,
        frequency=rfm.frequency,
        monetary=rfm.monetary,
        r=5 - sum(1 for b in breakpoints.recency_days if rfm.recency_days > b),
        f=1 + sum(1 for b in breakpoints.frequency if rfm.frequency > b),
        m=1 + sum(1 for b in breakpoints.monetary if float(rfm.monetary) > b),
    )


def lifecycle(
    activity: Activity, enrolled_at: datetime | None, as_of: datetime, rules: Rules
) -> tuple[Lifecycle, str]:
    """`lapsed` after `lapsed_days` without a purchase (or without a first one since the
    enrolment), `at_risk` after `at_risk_days`; `won_back` for `won_back_days` after the
    purchase that ended a lapse; `new` within `new_days` of the enrolment; else `active`."""
    limits = rules.lifecycle
    since = activity.last_purchase_at or enrolled_at
    if since is None:
        return "new", "no purchase or enrolment seen yet"
    quiet = days_between(since, as_of)
    what = "last purchase" if activity.last_purchase_at else "enrolment, no purchase since"
    if quiet >= limits.lapsed_days:
        return "lapsed", f"{quiet} days since the {what} (lapsed at {limits.lapsed_days})"
    if quiet >= limits.at_risk_days:
        return "at_risk", f"{quiet} days since the {what} (at risk at {limits.at_risk_days})"
    returned = activity.returned_at
    if returned is not None and days_between(returned, as_of) < limits.won_back_days:
        return "won_back", f"bought again {days_between(returned, as_of)} days ago after a lapse"
    if enrolled_at is not None and days_between(enrolled_at, as_of) < limits.new_days:
        return "new", f"enrolled {days_between(enrolled_at, as_of)} days ago"
    return "active", f"{quiet} days since the last purchase"


def loyalty_types(facts: MemberFacts, rfm: Rfm, rules: Rules) -> tuple[LoyaltyType, ...]:
    found = []
    for name, rule in _TYPE_RULES:
        reasons = rule(facts, rfm, rules)
        if reasons is not None:
            found.append(LoyaltyType(name, reasons))
    return tuple(found)


Reasons = tuple[str, ...] | None


def _share(part: Decimal | int, whole: Decimal | int) -> Decimal:
    return Decimal(part) / Decimal(whole) if whole else Decimal(0)


def _percent(share: Decimal) -> str:
    return f"{(share * 100).quantize(Decimal(1))}%"


def _complaints(facts: MemberFacts, rules: Rules) -> int:
    return sum(1 for given in facts.feedback if rules.feedback.complaint(given))


def _promoters(facts: MemberFacts, rules: Rules) -> int:
    return sum(1 for given in facts.feedback if rules.feedback.promoter(given))


def _happy(facts: MemberFacts, rfm: Rfm, rules: Rules) -> Reasons:
    rule = rules.loyalty.happy
    redeemed = _share(facts.points.redeemed, facts.points.earned)
    bought = facts.activity.frequency
    if (
        bought < rule.min_purchases
        or _complaints(facts, rules)
        or redeemed > rule.max_redeemed_share
        or facts.perks > rule.max_perks
    ):
        return None
    return (
        f"{bought} purchases in {rules.window_days} days",
        "no complaint",
        f"redeemed {_percent(redeemed)} of the points earned, {facts.perks} perks used",
    )


def _price(facts: MemberFacts, rfm: Rfm, rules: Rules) -> Reasons:
    rule = rules.loyalty.price
    bought, in_campaign = facts.activity.frequency, facts.activity.campaign_purchases
    share = _share(in_campaign, bought)
    if bought < rule.min_purchases or share < rule.min_campaign_share:
        return None
    return (f"{in_campaign} of {bought} purchases inside campaigns ({_percent(share)})",)


def _program(facts: MemberFacts, rfm: Rfm, rules: Rules) -> Reasons:
    rule = rules.loyalty.program
    points = facts.points
    share = _share(points.redeemed, points.earned)
    if (
        points.earned < rule.min_points_earned
        or share < rule.min_redeemed_share
        or points.redemptions < rule.min_redemptions
    ):
        return None
    return (
        f"redeemed {_percent(share)} of {points.earned} points earned",
        f"{points.redemptions} redemptions",
    )


def _convenience(facts: MemberFacts, rfm: Rfm, rules: Rules) -> Reasons:
    rule = rules.loyalty.convenience
    activity = facts.activity
    bought, count = activity.frequency, activity.usual_place_purchases
    if bought < rule.min_purchases:
        return None
    share = _share(count, bought)
    variation = activity.rhythm_variation
    if share < rule.min_place_share or variation > rule.max_rhythm_variation:
        return None
    return (
        f"{count} of {bought} purchases at {activity.usual_place} ({_percent(share)})",
        f"a steady rhythm (gaps vary by {_percent(variation)})",
    )


def _perks(facts: MemberFacts, rfm: Rfm, rules: Rules) -> Reasons:
    rule = rules.loyalty.perks
    bought = facts.activity.frequency
    if not bought or bought > rule.max_purchases or facts.perks < rule.min_perks:
        return None
    return (
        f"only {bought} purchases in {rules.window_days} days",
        f"{facts.perks} free perks used (stamp rewards, surprises, coupons)",
    )


def _truly_loyal(facts: MemberFacts, rfm: Rfm, rules: Rules) -> Reasons:
    rule = rules.loyalty.truly_loyal
    if rfm.f is None or rfm.m is None or rfm.f < rule.min_f_score or rfm.m < rule.min_m_score:
        return None
    promoters = _promoters(facts, rules)
    advocacy = []
    if facts.referrals >= rule.min_referrals:
        advocacy.append(f"referred {facts.referrals} friends")
    if promoters >= rule.min_promoter_feedback:
        advocacy.append(f"{promoters} promoter scores")
    if not advocacy:
        return None
    return (f"frequency score {rfm.f}", f"monetary score {rfm.m}", *advocacy)


_TYPE_RULES = (
    ("happy", _happy),
    ("price", _price),
    ("program", _program),
    ("convenience", _convenience),
    ("perks", _perks),
    ("truly_loyal", _truly_loyal),
)
