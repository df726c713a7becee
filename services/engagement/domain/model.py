"""What every engagement rule shares: tiers, a scope, a window, a reward and the purchase they
look at. Pure Python: no framework, no I/O, time passed in (aware UTC `datetime`), money as
`Decimal`.

A rule that cannot hold raises `InvalidRule` (a `ValueError`) naming the field at fault, so an
admin API can answer with a 4xx problem that says which field to correct.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from shared.bounds import (
    IDENTIFIER_PATTERN,
    MAX_ID_LENGTH,
    MAX_LABEL_LENGTH,
    MAX_POINTS,
    PRINTABLE_PATTERN,
)
from shared.messaging.events import SEGMENT_NAME_PATTERN

# The program's tiers, lowest first; a member whose tier is not known yet is bronze.
TIERS = ("bronze", "silver", "gold", "platinum")
DEFAULT_TIER = TIERS[0]

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
_PRINTABLE = re.compile(PRINTABLE_PATTERN)
_SEGMENT = re.compile(SEGMENT_NAME_PATTERN)
MAX_SEGMENT_LENGTH = 72  # as the segment events bound it


class InvalidRule(ValueError):
    """A rule's field holds what the rule cannot work with; `field` names it (dotted for a
    nested one, e.g. `reward.points`)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def check_identifier(field: str, value: str | None) -> None:
    """An id (a rule's, a partner's, a reward's) as the events carry it."""
    if value is None:
        return
    if not (0 < len(value) <= MAX_ID_LENGTH and _IDENTIFIER.fullmatch(value)):
        raise InvalidRule(
            field, f"must be 1 to {MAX_ID_LENGTH} characters of letters, digits and ._:-"
        )


def check_label(field: str, value: str | None) -> None:
    """A name, a category or a badge: non-empty printable text of bounded length."""
    if value is None:
        return
    if not (0 < len(value) <= MAX_LABEL_LENGTH and _PRINTABLE.fullmatch(value)):
        raise InvalidRule(
            field, f"must be 1 to {MAX_LABEL_LENGTH} characters without control characters"
        )


def check_tier(field: str, value: str | None) -> None:
    if value is not None and value not in TIERS:
        raise InvalidRule(field, f"must be one of {', '.join(TIERS)}")


def check_whole(field: str, value: object, low: int, high: int) -> None:
    """A whole number (a `bool` is not one) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRule(field, f"must be a whole number from {low} to {high}")


def tier_at_least(tier: str | None, min_tier: str | None) -> bool:
    """True when a member of `tier` (None: not known yet, so bronze; a name the program does not
    know ranks as bronze too) reaches `min_tier` (None: every member does)."""
    if min_tier is None:
        return True
    check_tier("min_tier", min_tier)
    rank = TIERS.index(tier) if tier in TIERS else 0
    return rank >= TIERS.index(min_tier)


def check_segment(field: str, value: str | None) -> None:
    """A segment of insights as the segment events name it: `loyalty:<type>`,
    `lifecycle:<stage>`, `tier:<tier>` or a custom segment's name."""
    if value is None:
        return
    if not (0 < len(value) <= MAX_SEGMENT_LENGTH and _SEGMENT.fullmatch(value)):
        raise InvalidRule(
            field,
            "must be a segment: loyalty:<type>, lifecycle:<stage>, tier:<tier> or a custom "
            "segment's name (lower case letters, digits, _ and -)",
        )


def check_targeting(min_tier: str | None, tier: str | None, segment: str | None) -> None:
    """A rule's targeting: `min_tier` (at least), `tier` (exactly) and `segment`; an exact
    tier below `min_tier` would leave the rule to nobody."""
    check_tier("min_tier", min_tier)
    check_tier("tier", tier)
    check_segment("segment", segment)
    if tier is not None and not tier_at_least(tier, min_tier):
        raise InvalidRule("tier", "is below min_tier: no member could qualify")


class Targeted(Protocol):
    """A rule that may be targeted: by tier (`min_tier` at least, `tier` exactly) and by a
    segment of insights (None: every member)."""

    @property
    def min_tier(self) -> str | None: ...

    @property
    def tier(self) -> str | None: ...

    @property
    def segment(self) -> str | None: ...


def targets(rule: Targeted, tier: str | None, segments: Collection[str]) -> bool:
    """True when the rule is for a member of `tier` (None: not known yet, so bronze) who is in
    `segments` (those engagement holds them in when it applies the purchase)."""
    member_tier = tier if tier in TIERS else DEFAULT_TIER
    return (
        tier_at_least(tier, rule.min_tier)
        and rule.tier in (None, member_tier)
        and (rule.segment is None or rule.segment in segments)
    )


def is_aware(at: datetime) -> bool:
    return at.tzinfo is not None and at.utcoffset() is not None


@dataclass(frozen=True)
class Scope:
    """Where a rule applies, like a campaign's: at a partner, at one of its stores, and/or to the
    items of a category (None: anywhere, any item)."""

    partner_id: str | None = None
    store_id: str | None = None
    category: str | None = None

    def __post_init__(self) -> None:
        check_identifier("partner_id", self.partner_id)
        check_identifier("store_id", self.store_id)
        check_label("category", self.category)

    def places(self, purchase: Purchase) -> bool:
        """True when the purchase was made at the scope's partner and store (if it names them)."""
        return self.partner_id in (None, purchase.partner_id) and self.store_id in (
            None,
            purchase.store_id,
        )


@dataclass(frozen=True)
class Window:
    """When a rule applies: from `starts_at` (included) to `ends_at` (excluded; None: for
    good). Both aware, `ends_at` after `starts_at`."""

    starts_at: datetime
    ends_at: datetime | None = None

    def __post_init__(self) -> None:
        if not is_aware(self.starts_at):
            raise InvalidRule("starts_at", "must carry a time zone")
        if self.ends_at is None:
            return
        if not is_aware(self.ends_at):
            raise InvalidRule("ends_at", "must carry a time zone")
        if self.ends_at <= self.starts_at:
            raise InvalidRule("ends_at", "must be after starts_at")

    def contains(self, at: datetime) -> bool:
        """starts_at <= at < ends_at."""
        return self.starts_at <= at and (self.ends_at is None or at < self.ends_at)


@dataclass(frozen=True)
class Reward:
    """What a rule grants: `points` (1 to the ledger's maximum) or the catalogue's `reward_id`,
    exactly one of them."""

    points: int | None = None
    reward_id: str | None = None

    def __post_init__(self) -> None:
        if (self.points is None) == (self.reward_id is None):
            raise InvalidRule("reward", "is either points or a reward_id, exactly one")
        if self.points is not None:
            check_whole("reward.points", self.points, 1, MAX_POINTS)
        check_identifier("reward.reward_id", self.reward_id)


@dataclass(frozen=True)
class Item:
    sku: str
    category: str | None
    quantity: Decimal
    unit_price: Decimal

    @property
    def value(self) -> Decimal:
        return self.quantity * self.unit_price


@dataclass(frozen=True)
class Purchase:
    """What the rules need to know of a completed purchase."""

    purchase_id: str
    customer_id: str
    partner_id: str
    store_id: str | None
    occurred_at: datetime
    total: Decimal
    items: tuple[Item, ...] = ()

    @property
    def key(self) -> str:
        return purchase_key(self.partner_id, self.purchase_id)

    def lines_of(self, category: str | None) -> tuple[Item, ...]:
        """The items of `category` (None: every item)."""
        if category is None:
            return self.items
        return tuple(item for item in self.items if item.category == category)


def purchase_key(partner_id: str, purchase_id: str) -> str:
    """A purchase's id across partners (purchase ids are each partner's own, unique per partner
    only): the same key points uses."""
    return f"{partner_id}:{purchase_id}"


def refund_key(partner_id: str, refund_id: str) -> str:
    """A refund's id across partners (refund ids are each partner's own): the same key points
    uses."""
    return f"{partner_id}:{refund_id}"


def lines_value(lines: tuple[Item, ...]) -> Decimal:
    """What the lines are worth at their unit prices (a negative line counts as nothing)."""
    return sum((max(line.value, Decimal(0)) for line in lines), Decimal(0))


def refunded_share(total: Decimal, refunded: Decimal) -> Decimal:
    """The share of a purchase refunded so far, in [0, 1]: refunds beyond the total are capped
    at it (a purchase of nothing is wholly refunded by any refund)."""
    if refunded <= 0:
        return Decimal(0)
    if refunded >= total:
        return Decimal(1)
    return refunded / total


# Segment membership (the read model of insights' segment events) ---------------------------


@dataclass(frozen=True)
class Membership:
    """A member entered (`member`) or left a segment at `changed_at`: per member and segment
    the newest wins, so a redelivery or an event read out of order never flips it back."""

    customer_id: str
    segment: str
    member: bool
    changed_at: datetime

    @property
    def rank(self) -> tuple[datetime, bool]:
        """What "newer" means: the later `changed_at`; at the same instant leaving outranks
        entering (a doubt never grants a targeted reward), so any order ends the same."""
        return (self.changed_at, not self.member)


def newest(changes: Iterable[Membership]) -> dict[tuple[str, str], Membership]:
    """The newest change of each (customer_id, segment) among `changes`, in any order."""
    kept: dict[tuple[str, str], Membership] = {}
    for change in changes:
        key = (change.customer_id, change.segment)
        if key not in kept or change.rank > kept[key].rank:
            kept[key] = change
    return kept
