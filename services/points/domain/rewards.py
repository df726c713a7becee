"""The reward catalogue: what a member may redeem now, and why not. Pure Python: no framework,
no I/O, time passed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

# The tiers a reward may ask for, lowest first; a member without one is bronze.
TIERS = ("bronze", "silver", "gold", "platinum")
DEFAULT_TIER = TIERS[0]
DEFAULT_COUPON_VALIDITY_DAYS = 30

# Why a member may not redeem a reward now, in the order they are listed.
TIER, STOCK, LIMIT, WINDOW, POINTS = "tier", "stock", "limit", "window", "points"
WHY_NOT_ORDER = (TIER, STOCK, LIMIT, WINDOW, POINTS)


class RewardKind(StrEnum):
    COUPON = "coupon"
    ITEM = "item"
    DISCOUNT = "discount"


@dataclass(frozen=True)
class Reward:
    reward_id: str
    name: str
    kind: RewardKind
    points_cost: int
    created_at: datetime
    description: str | None = None
    value: Decimal | None = None  # what a discount is worth, in the program's currency
    # The partner that honours (and funds) the reward; none: any partner.
    partner_id: str | None = None
    min_tier: str | None = None
    stock: int | None = None  # how many may ever be issued; none: unlimited
    redeemed: int = 0  # how many were issued
    per_customer_limit: int | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    coupon_validity_days: int = DEFAULT_COUPON_VALIDITY_DAYS
    retired_at: datetime | None = None


def reward_flaw(reward: Reward) -> str | None:
    """What makes a reward unusable, or None."""
    if reward.points_cost <= 0:
        return "points_cost must be positive"
    starts, ends = reward.starts_at, reward.ends_at
    if starts is not None and ends is not None and ends <= starts:
        return "ends_at must be after starts_at"
    if reward.kind is RewardKind.DISCOUNT and reward.value is None:
        return "value: a discount reward says what it is worth"
    if reward.min_tier is not None and reward.min_tier not in TIERS:
        return f"min_tier must be one of {', '.join(TIERS)}"
    if reward.stock is not None and reward.stock < reward.redeemed:
        return f"stock cannot be below the {reward.redeemed} already redeemed"
    return None


def tier_rank(tier: str) -> int:
    """A tier's place among TIERS; a tier the catalogue does not know ranks lowest."""
    return TIERS.index(tier) if tier in TIERS else 0


def is_open(reward: Reward, now: datetime) -> bool:
    """Within its window and not retired."""
    if reward.retired_at is not None and reward.retired_at <= now:
        return False
    if reward.starts_at is not None and now < reward.starts_at:
        return False
    return reward.ends_at is None or now < reward.ends_at


def is_listed(reward: Reward, now: datetime) -> bool:
    """Shown in the catalogue by default: not retired, not ended (perhaps not started)."""
    if reward.retired_at is not None and reward.retired_at <= now:
        return False
    return reward.ends_at is None or now < reward.ends_at


def why_not(
    reward: Reward, *, tier: str, used: int, available: int | None, now: datetime
) -> list[str]:
    """Why the member (of `tier`, who holds `used` coupons of it and `available` points)
    may not redeem the reward at `now`, in WHY_NOT_ORDER; empty when they may. With
    `available` None the points are not judged."""
    reasons: list[str] = []
    if reward.min_tier is not None and tier_rank(tier) < tier_rank(reward.min_tier):
        reasons.append(TIER)
    if reward.stock is not None and reward.redeemed >= reward.stock:
        reasons.append(STOCK)
    if reward.per_customer_limit is not None and used >= reward.per_customer_limit:
        reasons.append(LIMIT)
    if not is_open(reward, now):
        reasons.append(WINDOW)
    if available is not None and available < reward.points_cost:
        reasons.append(POINTS)
    return reasons


def coupon_expiry(reward: Reward, issued_at: datetime) -> datetime:
    return issued_at + timedelta(days=reward.coupon_validity_days)
