"""What a purchase earns: the contract's formula, campaigns and the rules that produced it.

    points = floor(Σ parts: amount * tier multiplier * Π campaign multipliers) + Σ bonuses

Amounts are shared out and multiplied as exact fractions, so nothing is rounded before the
one floor at the end and the parts of a purchase add up to its total exactly. Pure Python:
no framework, no I/O, time passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
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
    `occurred_at`) in [starts_at, ends_at), at a partner and a store if given; with a
    category, the multiplier boosts only the items of that category and the bonus needs one."""

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

    @property
    def rule_id(self) -> str:
        return f"campaign:{self.campaign_id}"

    def scopes(self, purchase: PurchaseFacts) -> bool:
        """True when the purchase's time, partner and store are within the campaign's."""
        return (
            self.starts_at <= purchase.occurred_at < self.ends_at
            and self.partner_id in (None, purchase.partner_id)
            and self.store_id in (None, purchase.store_id)
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
    points: int
    rule_ids: tuple[str, ...]
    expires_at: datetime


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
) -> Earning:
    """The formula of the contract, with the rule ids of everything that counted: `base`,
    `tier:<name>` when the customer has a tier, and `campaign:<id>` for each campaign that
    changed the points. The lot expires after the longest validity of those campaigns, or
    the program's when none sets one."""
    scoped = sorted(
        (c for c in campaigns if c.scopes(purchase)), key=lambda c: (c.starts_at, c.campaign_id)
    )
    parts = parts_of(purchase.total, purchase.items)
    tier_factor = Fraction(tier_multiplier(program, tier)) * Fraction(program.points_per_unit)
    applied: list[Campaign] = []
    exact = Fraction(0)
    boosted_by: set[str] = set()
    for part in parts:
        boost = Fraction(1)
        for campaign in scoped:
            if campaign.multiplier is not None and _covers(campaign, part):
                boost *= Fraction(campaign.multiplier)
                boosted_by.add(campaign.campaign_id)
        # A product of many campaigns is capped where the ledger's 32-bit points stay safe.
        exact += part.amount * tier_factor * min(boost, Fraction(MAX_CAMPAIGN_MULTIPLIER))
    bonuses = 0
    for campaign in scoped:
        gives_bonus = campaign.bonus is not None and any(_covers(campaign, p) for p in parts)
        if gives_bonus:
            assert campaign.bonus is not None
            bonuses += campaign.bonus
        if gives_bonus or campaign.campaign_id in boosted_by:
            applied.append(campaign)
    points = min(math.floor(exact) + bonuses, MAX_POINTS)
    rule_ids = [BASE_RULE]
    if tier is not None:
        rule_ids.append(f"tier:{tier}")
    rule_ids.extend(c.rule_id for c in applied)
    validities = [c.validity_days for c in applied if c.validity_days is not None]
    expires_at = (
        purchase.occurred_at + timedelta(days=max(validities))
        if validities
        else program.expiry_for(purchase.occurred_at)
    )
    return Earning(points=points, rule_ids=tuple(rule_ids), expires_at=expires_at)


def _covers(campaign: Campaign, part: Part) -> bool:
    return campaign.category is None or campaign.category == part.category
