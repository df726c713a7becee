"""What a purchase earns: the contract's formula, campaigns and the rules that produced it.

    points = floor(Σ parts: amount * tier multiplier * Π campaign multipliers) + Σ bonuses

Amounts are shared out and multiplied as exact fractions, so nothing is rounded before the
one floor at the end and the parts of a purchase add up to its total exactly. Pure Python:
no framework, no I/O, time passed in.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from services.points.domain.model import Program
from shared.bounds import MAX_CAMPAIGN_MULTIPLIER, MAX_POINTS

BASE_RULE = "base"


@dataclass(frozen=True)
class Campaign:
    """A multiplier and/or a fixed bonus for the purchases it scopes: those made (by their
    `occurred_at`) in [starts_at, ends_at), at a partner and a store if given, by a member of
    that tier and in that segment if given (as points knows them when it applies the
    purchase); with a category, the multiplier boosts only the items of that category and the
    bonus needs one."""

    campaign_id: str
    name: str
    starts_at: datetime
    ends_at: datetime
    multiplier: Decimal | None = None
    bonus: int | None = None
    partner_id: str | None = None
    store_id: str | None = None
    category: str | None = None
    validity_days: int | None = None
    tier: str | None = None
    segment: str | None = None

    @property
    def rule_id(self) -> str:
        return f"campaign:{self.campaign_id}"

    def scopes(
        self,
        purchase: PurchaseFacts,
        tier: str | None = None,
        segments: AbstractSet[str] = frozenset(),
    ) -> bool:
        """True when the purchase's time, partner and store are within the campaign's, and
        the buyer's tier and segments (`segments`: those they are in) are those it names."""
        return (
            self.starts_at <= purchase.occurred_at < self.ends_at
            and self.partner_id in (None, purchase.partner_id)
            and self.store_id in (None, purchase.store_id)
            and self.tier in (None, tier)
            and (self.segment is None or self.segment in segments)
        )


def campaign_flaw(campaign: Campaign) -> str | None:
    """What makes a campaign meaningless, or None when it is sound."""
    if campaign.starts_at >= campaign.ends_at:
        return "starts_at must be before ends_at"
    if campaign.multiplier is None and campaign.bonus is None:
        return "a campaign needs a multiplier, a bonus or both"
    return None


@dataclass(frozen=True)
class Item:
    category: str | None
    quantity: Decimal
    unit_price: Decimal


@dataclass(frozen=True)
class PurchaseFacts:
    """What the rules need to know of a purchase."""

    partner_id: str
    store_id: str | None
    occurred_at: datetime
    total: Decimal
    items: Sequence[Item] = ()


@dataclass(frozen=True)
class Part:
    """A share of the purchase's total, with the category of the items it is for."""

    amount: Fraction
    category: str | None


@dataclass(frozen=True)
class Earning:
    """What a purchase earns: `points` in all, of which `campaign_points` (the share of the
    campaigns that set a validity of their own) go to a lot of their own expiring at
    `campaign_expires_at`, and the rest to the purchase's lot expiring at `expires_at`."""

    points: int
    rule_ids: tuple[str, ...]
    expires_at: datetime
    campaign_points: int = 0
    campaign_expires_at: datetime | None = None
    campaign_rule_ids: tuple[str, ...] = ()

    @property
    def base_points(self) -> int:
        return self.points - self.campaign_points


def parts_of(total: Decimal, items: Sequence[Item]) -> list[Part]:
    """The total shared out over the items in proportion to `quantity * unit_price` (so a
    basket discount is shared too); without items, or items worth nothing, one part."""
    if total < 0:
        raise ValueError("a purchase total cannot be negative")
    weights = [Fraction(item.quantity) * Fraction(item.unit_price) for item in items]
    whole = sum(weights, Fraction(0))
    if whole == 0:
        return [Part(Fraction(total), None)]
    return [
        Part(Fraction(total) * weight / whole, item.category)
        for item, weight in zip(items, weights, strict=True)
    ]


def tier_multiplier(program: Program, tier: str | None) -> Decimal:
    """A customer without a known tier, or with one the program does not name, earns at 1."""
    if tier is None:
        return Decimal(1)
    return program.tier_multipliers.get(tier, Decimal(1))


def purchase_points(
    program: Program,
    purchase: PurchaseFacts,
    *,
    tier: str | None,
    campaigns: Iterable[Campaign],
    segments: AbstractSet[str] = frozenset(),
    offers: Iterable[Campaign] = (),
) -> Earning:
    """The formula of the contract, with the rule ids of everything that counted: `base`,
    `tier:<name>` when the customer has a tier, `campaign:<id>` for each campaign that
    changed the points and `offer:<id>` for each of the buyer's personal offers that did
    (`offers`: theirs alone, as campaigns: `domain.offers`). The points of campaigns with a
    `validity_days` of their own are told apart (`campaign_points`): they make a lot of their
    own. `segments`: those the buyer is in, for the campaigns that target one."""
    tier_factor = _EXACT.multiply(tier_multiplier(program, tier), program.points_per_unit)
    base_rules = (BASE_RULE,) if tier is None else (BASE_RULE, f"tier:{tier}")
    scoped = [c for c in (*campaigns, *offers) if c.scopes(purchase, tier, segments)]
    if not scoped:  # the common case, kept cheap: one product, one floor
        points = min(_floor_of_parts(purchase, tier_factor, ()), MAX_POINTS)
        return Earning(points, base_rules, program.expiry_for(purchase.occurred_at))
    scoped.sort(key=lambda c: (c.starts_at, c.campaign_id))
    categories = _categories_of(purchase)
    boosting = [c for c in scoped if c.multiplier is not None and _covers_any(c, categories)]
    boosting_ids = {c.rule_id for c in boosting}
    bonuses = 0
    applied: list[Campaign] = []
    for campaign in scoped:
        gives_bonus = campaign.bonus is not None and _covers_any(campaign, categories)
        if gives_bonus:
            assert campaign.bonus is not None
            bonuses += campaign.bonus
        if gives_bonus or campaign.rule_id in boosting_ids:
            applied.append(campaign)
    points = min(_floor_of_parts(purchase, tier_factor, boosting) + bonuses, MAX_POINTS)
    rule_ids = (*base_rules, *(c.rule_id for c in applied))
    expires_at = program.expiry_for(purchase.occurred_at)
    validities = [c.validity_days for c in applied if c.validity_days is not None]
    if not validities:
        return Earning(points=points, rule_ids=rule_ids, expires_at=expires_at)
    # A campaign's validity is for its own share only: what the purchase would earn without
    # those campaigns keeps the program's validity; the difference is a lot of its own,
    # expiring after the longest of their validities.
    own_validity = [c for c in applied if c.validity_days is not None]
    lasting = [c for c in applied if c.validity_days is None]
    lasting_boost = [c for c in boosting if c.validity_days is None]
    lasting_bonuses = sum(
        c.bonus for c in lasting if c.bonus is not None and _covers_any(c, categories)
    )
    base = min(_floor_of_parts(purchase, tier_factor, lasting_boost) + lasting_bonuses, points)
    return Earning(
        points=points,
        rule_ids=(*base_rules, *(c.rule_id for c in lasting)),
        expires_at=expires_at,
        campaign_points=points - base,
        campaign_expires_at=purchase.occurred_at + timedelta(days=max(validities)),
        campaign_rule_ids=tuple(c.rule_id for c in own_validity),
    )


# Decimal arithmetic that is exact or raises: every input is a finite decimal, products and
# sums of them are exact at this precision, and the one division is an integer division.
# The same numbers as the formula in fractions (`parts_of`), without a Fraction per step.
_EXACT = decimal.Context(
    prec=decimal.MAX_PREC,
    traps=[decimal.Inexact, decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
_ONE = Decimal(1)


def _categories_of(purchase: PurchaseFacts) -> frozenset[str | None]:
    """The categories of the purchase's parts: {None} when it is one part."""
    whole = Decimal(0)
    for item in purchase.items:
        whole = _EXACT.add(whole, _EXACT.multiply(item.quantity, item.unit_price))
    if whole == 0:
        return frozenset({None})
    return frozenset(item.category for item in purchase.items)


def _floor_of_parts(
    purchase: PurchaseFacts, tier_factor: Decimal, boosting: Sequence[Campaign]
) -> int:
    """floor(Σ parts: share of the total * tier factor * capped product of multipliers).

    With weights w_i (quantity * unit price) and W their sum, the parts are total * w_i / W,
    so the sum is total * tier factor * Σ(w_i * boost_i) / W: one exact integer division."""
    boosts: dict[str | None, Decimal] = {}

    def boost_of(category: str | None) -> Decimal:
        boost = boosts.get(category)
        if boost is None:
            boost = _ONE
            for campaign in boosting:
                if campaign.category is None or campaign.category == category:
                    assert campaign.multiplier is not None
                    boost = _EXACT.multiply(boost, campaign.multiplier)
            # A product of many campaigns is capped where the ledger's 32-bit points stay safe.
            boost = boosts[category] = min(boost, MAX_CAMPAIGN_MULTIPLIER)
        return boost

    if purchase.total < 0:
        raise ValueError("a purchase total cannot be negative")
    scaled_total = _EXACT.multiply(purchase.total, tier_factor)
    whole = weighted = Decimal(0)
    for item in purchase.items:
        weight = _EXACT.multiply(item.quantity, item.unit_price)
        whole = _EXACT.add(whole, weight)
        if weight:
            weighted = _EXACT.add(weighted, _EXACT.multiply(weight, boost_of(item.category)))
    if whole == 0:
        return int(_EXACT.multiply(scaled_total, boost_of(None)))
    return int(_EXACT.divide_int(_EXACT.multiply(scaled_total, weighted), whole))


def _covers_any(campaign: Campaign, categories: frozenset[str | None]) -> bool:
    return campaign.category is None or campaign.category in categories
