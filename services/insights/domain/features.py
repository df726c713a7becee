"""A member's features as of an instant: RFM with quintile scores, lifecycle stage and the six
types of loyal customer, each with the reasons that put the member there."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from services.insights.domain.model import (
    ZERO,
    Breakpoints,
    Features,
    Lifecycle,
    LoyaltyType,
    MemberFacts,
    Purchase,
    Rfm,
    Rules,
)

DAY = timedelta(days=1)


def features(
    facts: MemberFacts, as_of: datetime, rules: Rules, breakpoints: Breakpoints | None
) -> Features:
    kept = _kept_by(facts.purchases, as_of)
    rfm = scored(rfm_of(kept, as_of, rules), breakpoints)
    stage, why = lifecycle(kept, facts.enrolled_at, as_of, rules)
    return Features(
        customer_id=facts.customer_id,
        as_of=as_of,
        rfm=rfm,
        lifecycle=stage,
        lifecycle_reason=why,
        loyalty_types=loyalty_types(facts, _in_window(kept, as_of, rules), rfm, rules),
        tier=facts.tier or rules.entry_tier,
    )


def _kept_by(purchases: Sequence[Purchase], as_of: datetime) -> list[Purchase]:
    """The purchases made by `as_of` and not wholly refunded, oldest first."""
    return sorted(
        (p for p in purchases if p.occurred_at <= as_of and p.kept),
        key=lambda p: (p.occurred_at, p.key),
    )


def _in_window(kept: Sequence[Purchase], as_of: datetime, rules: Rules) -> list[Purchase]:
    start = as_of - rules.window
    return [p for p in kept if p.occurred_at > start]


def days_between(earlier: datetime, later: datetime) -> int:
    """Whole days, as the SQL of the breakpoints counts them."""
    return int((later - earlier) / DAY)


def rfm_of(kept: Sequence[Purchase], as_of: datetime, rules: Rules) -> Rfm:
    window = _in_window(kept, as_of, rules)
    return Rfm(
        recency_days=days_between(kept[-1].occurred_at, as_of) if kept else None,
        frequency=len(window),
        monetary=sum((p.net for p in window), ZERO),
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
    kept: Sequence[Purchase], enrolled_at: datetime | None, as_of: datetime, rules: Rules
) -> tuple[Lifecycle, str]:
    """`lapsed` after `lapsed_days` without a purchase (or without a first one since the
    enrolment), `at_risk` after `at_risk_days`; `won_back` for `won_back_days` after the
    purchase that ended a lapse; `new` within `new_days` of the enrolment; else `active`."""
    limits = rules.lifecycle
    since = kept[-1].occurred_at if kept else enrolled_at
    if since is None:
        return "new", "no purchase or enrolment seen yet"
    quiet = days_between(since, as_of)
    what = "last purchase" if kept else "enrolment, no purchase since"
    if quiet >= limits.lapsed_days:
        return "lapsed", f"{quiet} days since the {what} (lapsed at {limits.lapsed_days})"
    if quiet >= limits.at_risk_days:
        return "at_risk", f"{quiet} days since the {what} (at risk at {limits.at_risk_days})"
    returned = _return_after_lapse(kept, limits.lapsed_days)
    if returned is not None and days_between(returned, as_of) < limits.won_back_days:
        return "won_back", f"bought again {days_between(returned, as_of)} days ago after a lapse"
    if enrolled_at is not None and days_between(enrolled_at, as_of) < limits.new_days:
        return "new", f"enrolled {days_between(enrolled_at, as_of)} days ago"
    return "active", f"{quiet} days since the last purchase"


def _return_after_lapse(kept: Sequence[Purchase], lapsed_days: int) -> datetime | None:
    """The latest purchase that came `lapsed_days` or more after the one before it."""
    for earlier, later in zip(reversed(kept[:-1]), reversed(kept[1:]), strict=True):
        if days_between(earlier.occurred_at, later.occurred_at) >= lapsed_days:
            return later.occurred_at
    return None


def loyalty_types(
    facts: MemberFacts, window: Sequence[Purchase], rfm: Rfm, rules: Rules
) -> tuple[LoyaltyType, ...]:
    found = []
    for name, rule in _TYPE_RULES:
        reasons = rule(facts, window, rfm, rules)
        if reasons is not None:
            found.append(LoyaltyType(name, reasons))
    return tuple(found)


Reasons = tuple[str, ...] | None


def _share(part: Decimal | int, whole: Decimal | int) -> Decimal:
    return Decimal(part) / Decimal(whole) if whole else Decimal(0)


def _percent(share: Decimal) -> str:
    return f"{(share * 100).quantize(Decimal(1))}%"


def _complaints(facts: MemberFacts, rules: Rules) -> int:
    limits = rules.feedback
    return sum(
        1
        for given in facts.feedback
        if given.score is not None
        and (
            (given.kind == "nps" and given.score <= limits.nps_complaint_max)
            or (given.kind == "review" and given.score <= limits.review_complaint_max)
        )
    )


def _promoters(facts: MemberFacts, rules: Rules) -> int:
    limits = rules.feedback
    return sum(
        1
        for given in facts.feedback
        if given.score is not None
        and (
            (given.kind == "nps" and given.score >= limits.nps_promoter_min)
            or (given.kind == "review" and given.score >= limits.review_promoter_min)
        )
    )


def _happy(facts: MemberFacts, window: Sequence[Purchase], rfm: Rfm, rules: Rules) -> Reasons:
    rule = rules.loyalty.happy
    redeemed = _share(facts.points.redeemed, facts.points.earned)
    if (
        len(window) < rule.min_purchases
        or _complaints(facts, rules)
        or redeemed > rule.max_redeemed_share
        or facts.perks > rule.max_perks
    ):
        return None
    return (
        f"{len(window)} purchases in {rules.window_days} days",
        "no complaint",
        f"redeemed {_percent(redeemed)} of the points earned, {facts.perks} perks used",
    )


def _price(facts: MemberFacts, window: Sequence[Purchase], rfm: Rfm, rules: Rules) -> Reasons:
    rule = rules.loyalty.price
    in_campaign = sum(1 for p in window if p.in_campaign)
    share = _share(in_campaign, len(window))
    if len(window) < rule.min_purchases or share < rule.min_campaign_share:
        return None
    return (f"{in_campaign} of {len(window)} purchases inside campaigns ({_percent(share)})",)


def _program(facts: MemberFacts, window: Sequence[Purchase], rfm: Rfm, rules: Rules) -> Reasons:
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


def _convenience(facts: MemberFacts, window: Sequence[Purchase], rfm: Rfm, rules: Rules) -> Reasons:
    rule = rules.loyalty.convenience
    if len(window) < rule.min_purchases:
        return None
    place, count = _usual_place(window)
    share = _share(count, len(window))
    variation = rhythm_variation(window)
    if share < rule.min_place_share or variation > rule.max_rhythm_variation:
        return None
    return (
        f"{count} of {len(window)} purchases at {place} ({_percent(share)})",
        f"a steady rhythm (gaps vary by {_percent(variation)})",
    )


def _usual_place(window: Sequence[Purchase]) -> tuple[str, int]:
    """The partner (or store of a partner) the member buys at most."""
    stores = Counter(f"store {p.partner_id}/{p.store_id}" for p in window if p.store_id)
    partners = Counter(f"partner {p.partner_id}" for p in window)
    return max((*stores.items(), *partners.items()), key=lambda item: (item[1], item[0]))


def rhythm_variation(window: Sequence[Purchase]) -> Decimal:
    """The coefficient of variation of the days between purchases (0: like clockwork)."""
    gaps = [(later.occurred_at - earlier.occurred_at) / DAY for earlier, later in pairwise(window)]
    mean = statistics.fmean(gaps) if gaps else 0.0
    if len(gaps) < 2 or mean == 0:
        return Decimal(0)
    return Decimal(str(round(statistics.pstdev(gaps) / mean, 4)))


def _perks(facts: MemberFacts, window: Sequence[Purchase], rfm: Rfm, rules: Rules) -> Reasons:
    rule = rules.loyalty.perks
    if not window or len(window) > rule.max_purchases or facts.perks < rule.min_perks:
        return None
    return (
        f"only {len(window)} purchases in {rules.window_days} days",
        f"{facts.perks} free perks used (stamp rewards, surprises, coupons)",
    )


def _truly_loyal(facts: MemberFacts, window: Sequence[Purchase], rfm: Rfm, rules: Rules) -> Reasons:
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
