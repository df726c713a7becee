"""Stamp cards ("buy 9 coffees, the 10th is free"). Pure Python: no framework, no I/O, time
passed in.

Each qualifying purchase (or each whole unit of its qualifying items) adds stamps to the
member's card; a full card completes (its reward is granted) and a new card begins with the
surplus. A refund takes its purchase's stamps back in proportion to the money refunded: from
the current card first, and what the current card lacks reverses the newest completed cards
(their rewards are revoked).

Every completion has a grant id of its own (`completion_grant_id`), derived from the card, the
member, its number (`completed_count` once it is made) and the key of the purchase that
completed it: the same on every redelivery and replay, and never reused, since a purchase
gives stamps on a card once and the completions one purchase makes have distinct numbers. So
a card completed again after a refund revoked it is rewarded again (points credits a grant
id once and never after its revocation). A take-back names the completions it reverses by
number; the caller finds their grant ids where it recorded them.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from typing import Literal, get_args

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
    lines_value,
    targets,
)

Per = Literal["purchase", "item"]
PER_VALUES: tuple[str, ...] = get_args(Per)
MAX_STAMPS_REQUIRED = 1_000
# The most stamps one purchase gives (a basket of 500 lines of 10,000 units each would give
# millions): bounds the completions, so the reward events, that one purchase can make.
MAX_STAMPS_PER_PURCHASE = 1_000


@dataclass(frozen=True)
class StampCardRule:
    card_id: str
    name: str
    stamps_required: int
    per: Per
    scope: Scope
    reward: Reward
    window: Window
    min_amount: Decimal | None = None  # per purchase: its (category's) value; per item: a line's
    min_tier: str | None = None
    tier: str | None = None  # exactly this tier
    segment: str | None = None  # only members in this segment of insights

    def __post_init__(self) -> None:
        check_identifier("card_id", self.card_id)
        check_label("name", self.name)
        check_whole("stamps_required", self.stamps_required, 1, MAX_STAMPS_REQUIRED)
        if self.per not in PER_VALUES:
            raise InvalidRule("per", f"must be one of {', '.join(PER_VALUES)}")
        if self.min_amount is not None and not (
            isinstance(self.min_amount, Decimal) and self.min_amount.is_finite()
        ):
            raise InvalidRule("min_amount", "must be an amount")
        if self.min_amount is not None and self.min_amount < 0:
            raise InvalidRule("min_amount", "cannot be negative")
        check_targeting(self.min_tier, self.tier, self.segment)


def stamps_for(
    rule: StampCardRule,
    purchase: Purchase,
    tier: str | None,
    segments: Collection[str] = frozenset(),
) -> int:
    """The stamps a purchase gives: none outside the rule's window (by `occurred_at`), scope or
    targeting (`model.targets`: the member's `tier` and `segments`); per purchase one (see
    `_purchase_qualifies`), per item the whole units of the lines that qualify (see `_units`),
    at most `MAX_STAMPS_PER_PURCHASE`."""
    if not (
        rule.window.contains(purchase.occurred_at)
        and rule.scope.places(purchase)
        and targets(rule, tier, segments)
    ):
        return 0
    if rule.per == "purchase":
        return 1 if _purchase_qualifies(rule, purchase) else 0
    return min(_units(rule, purchase), MAX_STAMPS_PER_PURCHASE)


def _purchase_qualifies(rule: StampCardRule, purchase: Purchase) -> bool:
    """Per purchase: with a category, the purchase must have a line of it and `min_amount` is
    what those lines are worth; without, any purchase (items or not) and its total."""
    category = rule.scope.category
    if category is None:
        amount = purchase.total
    else:
        lines = purchase.lines_of(category)
        if not lines:
            return False
        amount = lines_value(lines)
    return rule.min_amount is None or amount >= rule.min_amount


def _units(rule: StampCardRule, purchase: Purchase) -> int:
    """Per item: the whole units (floor of the quantity) of the lines of the rule's category
    (any line without one) whose unit price reaches `min_amount`; a purchase without items
    gives none."""
    return sum(
        max(math.floor(line.quantity), 0)
        for line in purchase.lines_of(rule.scope.category)
        if rule.min_amount is None or line.unit_price >= rule.min_amount
    )


@dataclass(frozen=True)
class Card:
    """A member's card for a rule: the stamps on the current card and how many cards are
    completed (and not revoked)."""

    card_id: str
    customer_id: str
    stamps: int = 0
    completed_count: int = 0

    def __post_init__(self) -> None:
        if self.stamps < 0 or self.completed_count < 0:
            raise ValueError("a card's stamps and completed_count are never negative")


@dataclass(frozen=True)
class Completion:
    """A completed card: `number` is the card's `completed_count` once it was made."""

    number: int
    grant_id: str


def completion_grant_id(card_id: str, customer_id: str, number: int, purchase_key: str) -> str:
    """The grant id of a card's `number`th completion, made by the purchase of `purchase_key`
    (`model.purchase_key`)."""
    return derived_id("stamp-card", card_id, customer_id, str(number), purchase_key)


def add_stamps(
    rule: StampCardRule, card: Card, stamps: int, purchase_key: str
) -> tuple[Card, list[Completion]]:
    """Adds the `stamps` (>= 0) of the purchase of `purchase_key`: each time the card is full
    it completes and a new card begins with the surplus, so several cards complete at once when
    the stamps fill more than one. The caller adds a purchase's stamps on a card once."""
    if stamps < 0:
        raise ValueError("stamps to add cannot be negative")
    full, left = divmod(card.stamps + stamps, rule.stamps_required)
    numbers = range(card.completed_count + 1, card.completed_count + full + 1)
    completions = [
        Completion(n, completion_grant_id(card.card_id, card.customer_id, n, purchase_key))
        for n in numbers
    ]
    return replace(card, stamps=left, completed_count=card.completed_count + full), completions


def take_back(rule: StampCardRule, card: Card, stamps: int) -> tuple[Card, list[int]]:
    """Takes `stamps` (>= 0) back: from the current card first; what it lacks reverses the newest
    completed cards (their numbers returned newest first: their rewards are revoked), each
    reversed card becoming the current one, full less what is still to take. What no card holds
    any more is dropped: stamps and completed_count never go below zero."""
    if stamps < 0:
        raise ValueError("stamps to take back cannot be negative")
    if stamps <= card.stamps:
        return replace(card, stamps=card.stamps - stamps), []
    lacking = stamps - card.stamps
    reversed_count = min(card.completed_count, -(-lacking // rule.stamps_required))
    left = max(reversed_count * rule.stamps_required - lacking, 0)
    numbers = list(range(card.completed_count, card.completed_count - reversed_count, -1))
    count = card.completed_count - reversed_count
    return replace(card, stamps=left, completed_count=count), numbers


def stamps_refunded(
    given: int, total: Decimal, refunded_before: Decimal, refunded_now: Decimal
) -> int:
    """How many of the `given` stamps of a purchase a refund takes back: the purchase keeps
    floor(given * (1 - share refunded)), so this refund takes what it kept before less what it
    keeps after. Exact (no rounding of the share): the refunds of a purchase never take more
    than `given` in all, and a whole refund takes them all."""
    before = max(refunded_before, Decimal(0))
    after = before + max(refunded_now, Decimal(0))
    return _kept(given, total, before) - _kept(given, total, after)


def _kept(given: int, total: Decimal, refunded: Decimal) -> int:
    if given <= 0 or refunded >= total:
        return 0
    return math.floor(given * (1 - Fraction(refunded) / Fraction(total)))
