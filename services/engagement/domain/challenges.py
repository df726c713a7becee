"""Challenges: time-boxed goals with a reward and/or a badge. Pure Python: no framework, no
I/O, time passed in.

A member's progress is computed from their contributions (the purchases, or the referred
members' enrolments, that counted), each with the share of it refunded so far: only activity
inside the challenge's window counts, and a refund takes its share of progress back. Once met,
a challenge stays met (the caller stops recomputing it); its reward is granted once per member
and challenge.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal, get_args

from services.engagement.domain.ids import derived_id
from services.engagement.domain.model import (
    InvalidRule,
    Purchase,
    Reward,
    Window,
    check_identifier,
    check_label,
    check_targeting,
    is_aware,
    lines_value,
    refunded_share,
    targets,
)

GoalKind = Literal[
    "purchases", "spend", "distinct_partners", "categories", "referrals", "streak_weeks"
]
GOAL_KINDS: tuple[str, ...] = get_args(GoalKind)
MAX_TARGET = Decimal(1_000_000_000)
CENT = Decimal("0.01")
# What a goal of each kind may narrow down: `category` and/or `partner_id`.
_NARROWED_BY: dict[str, frozenset[str]] = {
    "purchases": frozenset({"category", "partner_id"}),
    "spend": frozenset({"category", "partner_id"}),
    "distinct_partners": frozenset({"category"}),
    "categories": frozenset({"partner_id"}),
    "referrals": frozenset(),
    "streak_weeks": frozenset({"category", "partner_id"}),
}


@dataclass(frozen=True)
class Goal:
    """What meets a challenge: `target` purchases, spend (in the program's currency),
    distinct partners, distinct categories, referred members or consecutive ISO weeks with a
    purchase; optionally only at a partner and/or of a category, where the kind allows it."""

    kind: GoalKind
    target: Decimal
    category: str | None = None
    partner_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in GOAL_KINDS:
            raise InvalidRule("goal.kind", f"must be one of {', '.join(GOAL_KINDS)}")
        _check_target(self.kind, self.target)
        check_label("goal.category", self.category)
        check_identifier("goal.partner_id", self.partner_id)
        for name in ("category", "partner_id"):
            if getattr(self, name) is not None and name not in _NARROWED_BY[self.kind]:
                raise InvalidRule(f"goal.{name}", f"does not apply to a goal of {self.kind}")


def _check_target(kind: str, target: Decimal) -> None:
    """Positive, at most `MAX_TARGET`; a whole number for a count, cents for spend."""
    if not (isinstance(target, Decimal) and target.is_finite() and 0 < target <= MAX_TARGET):
        raise InvalidRule("goal.target", f"must be above 0 and at most {MAX_TARGET}")
    if kind != "spend" and target != target.to_integral_value():
        raise InvalidRule("goal.target", f"must be a whole number for a goal of {kind}")
    if kind == "spend" and target != target.quantize(CENT):
        raise InvalidRule("goal.target", "has at most two decimals")


@dataclass(frozen=True)
class ChallengeRule:
    challenge_id: str
    name: str
    goal: Goal
    window: Window
    reward: Reward | None = None
    badge: str | None = None
    min_tier: str | None = None
    tier: str | None = None  # exactly this tier
    segment: str | None = None  # only members in this segment of insights

    def __post_init__(self) -> None:
        check_identifier("challenge_id", self.challenge_id)
        check_label("name", self.name)
        check_label("badge", self.badge)
        check_targeting(self.min_tier, self.tier, self.segment)
        if self.window.ends_at is None:
            raise InvalidRule("ends_at", "a challenge is time-boxed: it needs an end")
        if self.reward is None and self.badge is None:
            raise InvalidRule("reward", "a challenge grants a reward, a badge or both")


@dataclass(frozen=True)
class Contribution:
    """What one purchase (or one referred member) brought to a challenge: `amount` is its
    qualifying spend, `categories` the goal's categories it had items of, and
    `refunded_share` (in [0, 1]) how much of it was refunded since."""

    source_id: str  # a purchase's key (`model.purchase_key`) or a referred member's id
    occurred_at: datetime
    amount: Decimal
    partner_id: str | None
    categories: frozenset[str]
    refunded_share: Decimal = Decimal(0)

    @property
    def kept(self) -> bool:
        """False once wholly refunded: it no longer counts."""
        return self.refunded_share < 1


def contribution_of(
    rule: ChallengeRule,
    purchase: Purchase,
    tier: str | None,
    segments: Collection[str] = frozenset(),
) -> Contribution | None:
    """What a purchase brings to the challenge, or None when it does not count: a goal of
    referrals, outside the window (`occurred_at`), not targeting the member (`model.targets`:
    their `tier` and `segments`), at another partner than
    the goal's, or without a line of the goal's category. `amount` is the spend that
    qualifies: the category's lines (at most the total) when the goal has one, else the
    total; `categories` are its items' (only the goal's, when it has one)."""
    goal = rule.goal
    if not _counts(rule, purchase.occurred_at, tier, segments) or goal.kind == "referrals":
        return None
    if goal.partner_id not in (None, purchase.partner_id):
        return None
    amount, categories = purchase.total, _categories(purchase)
    if goal.category is not None:
        lines = purchase.lines_of(goal.category)
        if not lines:
            return None
        amount, categories = min(lines_value(lines), purchase.total), frozenset({goal.category})
    return Contribution(
        source_id=purchase.key,
        occurred_at=purchase.occurred_at,
        amount=max(amount, Decimal(0)),
        partner_id=purchase.partner_id,
        categories=categories,
    )


def _categories(purchase: Purchase) -> frozenset[str]:
    return frozenset(item.category for item in purchase.items if item.category is not None)


def _counts(rule: ChallengeRule, at: datetime, tier: str | None, segments: Collection[str]) -> bool:
    return rule.window.contains(at) and targets(rule, tier, segments)


def referral_contribution(
    rule: ChallengeRule,
    referred_id: str,
    enrolled_at: datetime,
    tier: str | None,
    segments: Collection[str] = frozenset(),
) -> Contribution | None:
    """A member referred by the challenger (enrolled at `enrolled_at`): counts for a goal of
    referrals only, inside the window, for a referrer the rule targets (their `tier` and
    `segments`)."""
    if rule.goal.kind != "referrals" or not _counts(rule, enrolled_at, tier, segments):
        return None
    return Contribution(
        source_id=referred_id,
        occurred_at=enrolled_at,
        amount=Decimal(0),
        partner_id=None,
        categories=frozenset(),
    )


def after_refund(c: Contribution, total: Decimal, refunded: Decimal) -> Contribution:
    """The contribution once `refunded` (in all, so far) of its purchase's `total` is refunded."""
    return replace(c, refunded_share=refunded_share(total, refunded))


def progress(rule: ChallengeRule, contributions: Sequence[Contribution]) -> Decimal:
    """Where the member stands, never negative, never lower for more contributions: the
    contributions not wholly refunded (purchases, referrals), their distinct partners or
    categories, the longest run of consecutive ISO weeks (UTC) with one of them; or spend, the
    amounts less their refunded shares (to the cent). One contribution counts per
    `source_id`: the last one given (e.g. the one updated by a refund)."""
    latest = list({c.source_id: c for c in contributions}.values())
    return _MEASURES[rule.goal.kind](latest)


def is_met(rule: ChallengeRule, contributions: Sequence[Contribution]) -> bool:
    return progress(rule, contributions) >= rule.goal.target


def challenge_grant_id(challenge_id: str, customer_id: str) -> str:
    """A challenge's reward is granted once per member: its grant id says so."""
    return derived_id("challenge", challenge_id, customer_id)


def _kept(contributions: Sequence[Contribution]) -> list[Contribution]:
    return [c for c in contributions if c.kept]


def _count(contributions: Sequence[Contribution]) -> Decimal:
    return Decimal(len(_kept(contributions)))


def _spend(contributions: Sequence[Contribution]) -> Decimal:
    total = sum((_kept_amount(c) for c in contributions), Decimal(0))
    return total.quantize(CENT, rounding=ROUND_HALF_EVEN)


def _kept_amount(c: Contribution) -> Decimal:
    """The amount less its refunded share (the share taken as within [0, 1])."""
    share = min(max(c.refunded_share, Decimal(0)), Decimal(1))
    return max(c.amount, Decimal(0)) * (1 - share)


def _partners(contributions: Sequence[Contribution]) -> Decimal:
    return Decimal(len({c.partner_id for c in _kept(contributions) if c.partner_id is not None}))


def _distinct_categories(contributions: Sequence[Contribution]) -> Decimal:
    return Decimal(len(frozenset[str]().union(*(c.categories for c in _kept(contributions)))))


def _streak(contributions: Sequence[Contribution]) -> Decimal:
    """The longest run of consecutive ISO weeks (in UTC) with a contribution."""
    weeks = sorted({week_index(c.occurred_at) for c in _kept(contributions)})
    longest = run = 0
    for i, week in enumerate(weeks):
        run = run + 1 if i and week == weeks[i - 1] + 1 else 1
        longest = max(longest, run)
    return Decimal(longest)


def week_index(at: datetime) -> int:
    """Consecutive ISO weeks (Monday to Sunday, in UTC) have consecutive indices."""
    day = (at.astimezone(UTC) if is_aware(at) else at).date()
    monday = day - timedelta(days=day.weekday())
    return monday.toordinal() // 7


_MEASURES: dict[str, Callable[[Sequence[Contribution]], Decimal]] = {
    "purchases": _count,
    "spend": _spend,
    "distinct_partners": _partners,
    "categories": _distinct_categories,
    "referrals": _count,
    "streak_weeks": _streak,
}
