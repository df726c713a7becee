"""Surprise rewards ("ricompense inaspettate"): a qualifying purchase may win a reward by a
draw. Pure Python: no framework, no I/O, time and the program's secret passed in.

The draw is deterministic and auditable: `HMAC-SHA256(secret, "<rule id>/<purchase key>")`
(the purchase key is `<partner id>:<purchase id>`, `model.purchase_key`), its first 8 bytes
read as a big-endian integer `n`, the draw `n / 2**64` in [0, 1); the purchase wins when the
draw is below the rule's `chance`. The same purchase, however often it is delivered or
replayed, draws the same; an auditor with the secret recomputes every draw.

A drawn win is granted unless the member's cooldown or the rule's daily budget holds it back
(`admit`): no two wins of a rule by one member closer than `cooldown_days` (before or after:
a purchase reported late counts by when it was made), and the points a rule grants on a UTC
day of the purchases' `occurred_at` never above its `daily_budget`. A purchase wins a rule at
most once (its grant id is derived from the rule and the purchase key).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from services.engagement.domain.ids import derived_id
from services.engagement.domain.model import (
    InvalidRule,
    Purchase,
    Reward,
    Scope,
    Window,
    check_identifier,
    check_label,
    check_targeting,
    check_whole,
    targets,
)

DRAW_BYTES = 8
DRAW_SPACE = 2 ** (8 * DRAW_BYTES)
MAX_CHANCE_PLACES = 9  # "0.000000001" is the smallest chance a rule may have
MAX_COOLDOWN_DAYS = 3650
MAX_DAILY_BUDGET = 1_000_000_000

MemberKey = tuple[str, str]  # (surprise_id, customer_id)
BudgetKey = tuple[str, date]  # (surprise_id, UTC day)


@dataclass(frozen=True)
class SurpriseRule:
    """`chance` per qualifying purchase in (0, 1]; `daily_budget` in points (a points reward
    only), `cooldown_days` per member; None: no budget, no cooldown."""

    surprise_id: str
    name: str
    chance: Decimal
    reward: Reward
    scope: Scope
    window: Window
    min_tier: str | None = None
    daily_budget: int | None = None
    cooldown_days: int | None = None
    tier: str | None = None  # exactly this tier
    segment: str | None = None  # only members in this segment of insights

    def __post_init__(self) -> None:
        check_identifier("surprise_id", self.surprise_id)
        check_label("name", self.name)
        check_chance(self.chance)
        check_targeting(self.min_tier, self.tier, self.segment)
        if self.cooldown_days is not None:
            check_whole("cooldown_days", self.cooldown_days, 1, MAX_COOLDOWN_DAYS)
        if self.daily_budget is not None:
            check_whole("daily_budget", self.daily_budget, 1, MAX_DAILY_BUDGET)
            if self.reward.points is None:
                raise InvalidRule("daily_budget", "is in points: give a points reward with it")
            if self.daily_budget < self.reward.points:
                raise InvalidRule("daily_budget", "must be at least reward.points")


def check_chance(chance: object) -> None:
    if not (isinstance(chance, Decimal) and chance.is_finite() and 0 < chance <= 1):
        raise InvalidRule("chance", "must be a decimal above 0 and at most 1")
    exponent = chance.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if -exponent > MAX_CHANCE_PLACES:
        raise InvalidRule("chance", f"may have at most {MAX_CHANCE_PLACES} decimal places")


def qualifies(
    rule: SurpriseRule,
    purchase: Purchase,
    tier: str | None,
    segments: Collection[str] = frozenset(),
) -> bool:
    """Made inside the window, at the scope's partner and store, with a line of the scope's
    category (if it names one), by a member the rule targets (`model.targets`: their `tier`
    and `segments`)."""
    category = rule.scope.category
    return (
        rule.window.contains(purchase.occurred_at)
        and rule.scope.places(purchase)
        and (category is None or bool(purchase.lines_of(category)))
        and targets(rule, tier, segments)
    )


@dataclass(frozen=True)
class Draw:
    """One draw, as an auditor recomputes it."""

    message: str  # what the HMAC is of: "<surprise id>/<purchase key>"
    digest: str  # the HMAC-SHA256, hex
    number: int  # its first 8 bytes, big-endian, in [0, 2**64)

    @property
    def value(self) -> Fraction:
        """The draw in [0, 1): `number / 2**64`, exactly."""
        return Fraction(self.number, DRAW_SPACE)

    def wins(self, chance: Decimal) -> bool:
        return self.value < Fraction(chance)


def draw_message(surprise_id: str, purchase_key: str) -> str:
    """`/` is in no id, so no two (rule, purchase) pairs share a message."""
    return f"{surprise_id}/{purchase_key}"


def draw(secret: bytes, surprise_id: str, purchase_key: str) -> Draw:
    message = draw_message(surprise_id, purchase_key)
    digest = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return Draw(message, digest.hex(), int.from_bytes(digest[:DRAW_BYTES], "big"))


def draw_decimal(value: Fraction, places: int = 20) -> str:
    """The draw as a decimal string, truncated to `places` digits (the exact value is
    `number / 2**64`)."""
    scaled = value.numerator * 10**places // value.denominator
    return f"0.{scaled:0{places}d}" if scaled < 10**places else "1"


def surprise_grant_id(surprise_id: str, purchase_key: str) -> str:
    """A purchase wins a rule once: the grant id says so."""
    return derived_id("surprise", surprise_id, purchase_key)


def budget_day(at: datetime) -> date:
    """The day a win spends the budget of: the UTC day the purchase was made (so a replay
    spends the same days)."""
    offset = at.utcoffset()
    return (at - offset).date() if offset is not None else at.date()


@dataclass(frozen=True)
class Win:
    """A win recorded (or admitted now): the member's cooldown counts from `won_at`, the
    purchase's `occurred_at`."""

    surprise_id: str
    customer_id: str
    purchase_key: str
    won_at: datetime


@dataclass(frozen=True)
class Candidate:
    """A purchase whose draw won the rule, to be admitted or held back."""

    rule: SurpriseRule
    customer_id: str
    purchase_key: str
    occurred_at: datetime


def cooling(rule: SurpriseRule, past: Sequence[Win], at: datetime) -> bool:
    """True when a win of the rule by the member lies within `cooldown_days` of `at`."""
    if rule.cooldown_days is None:
        return False
    cooldown = timedelta(days=rule.cooldown_days)
    return any(abs(at - win.won_at) < cooldown for win in past)


def admit(
    candidates: Sequence[Candidate],
    wins: Mapping[MemberKey, Sequence[Win]],
    spent: Mapping[BudgetKey, int],
) -> tuple[list[Win], dict[BudgetKey, int]]:
    """The candidates that win, in their order, and each budget day's points spent after them.
    A candidate is held back when its purchase won the rule already, when the member's
    cooldown holds (`wins`: their wins of the rule so far), or when its points would take the
    rule's day past its `daily_budget` (`spent`: what the day spent so far, 0 when missing)."""
    won: dict[MemberKey, list[Win]] = {key: list(found) for key, found in wins.items()}
    spending = dict(spent)
    admitted: list[Win] = []
    drawn: set[tuple[str, str]] = set()  # (surprise_id, purchase_key) decided in this call
    for c in candidates:
        rule = c.rule
        past = won.setdefault((rule.surprise_id, c.customer_id), [])
        won_already = (rule.surprise_id, c.purchase_key) in drawn or any(
            w.purchase_key == c.purchase_key for w in past
        )
        drawn.add((rule.surprise_id, c.purchase_key))
        if won_already or cooling(rule, past, c.occurred_at):
            continue
        if rule.daily_budget is not None:
            points = rule.reward.points or 0
            day = (rule.surprise_id, budget_day(c.occurred_at))
            if spending.get(day, 0) + points > rule.daily_budget:
                continue
            spending[day] = spending.get(day, 0) + points
        win = Win(rule.surprise_id, c.customer_id, c.purchase_key, c.occurred_at)
        past.append(win)
        admitted.append(win)
    return admitted, spending
