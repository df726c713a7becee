"""The points program's rules. Pure Python: no framework, no I/O, time passed in."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

RefundPolicy = Literal["unlimited", "within_balance"]
CouponExpiry = Literal["refund_points", "forfeit"]


class EntryKind(StrEnum):
    EARN = "earn"  # points for a purchase
    BONUS = "bonus"  # welcome, referral, campaign bonuses
    REDEEM = "redeem"  # points spent on a reward
    HOLD = "hold"  # points reserved by a terminal until captured, voided or lapsed
    RELEASE = "release"  # a voided or lapsed hold's points, back in the lots they came from
    EXPIRE = "expire"  # what was left of a lot when it expired
    ADJUST = "adjust"  # by staff: positive, a lot; negative, drawn from the lots
    HELD = "held"  # earned above the daily ceiling: not a lot until staff release it
    REVERSE = "reverse"  # points taken back for a refund; beyond the lots it drew from: debt


# The kinds whose entries are lots: points others draw from, each with its own expiry.
LOT_KINDS = frozenset({EntryKind.EARN, EntryKind.BONUS, EntryKind.ADJUST})


@dataclass(frozen=True)
class WinBackOffer:
    """The personal offer a member is made on entering `lifecycle:lapsed` (`domain.offers`):
    a multiplier and/or a bonus on their purchases for `days` from then."""

    name: str
    days: int
    multiplier: Decimal | None = None
    bonus: int | None = None


@dataclass(frozen=True)
class Program:
    currency: str = "EUR"
    # "within_balance": a refund takes back at most what the lots hold, and never makes debt.
    refund_policy: RefundPolicy = "unlimited"
    # An unused coupon, expired: its points back to the member, or forfeited.
    coupon_expiry: CouponExpiry = "refund_points"
    points_per_unit: Decimal = Decimal(1)
    # What one point is worth in the program's currency: the settlement between partners.
    point_value: Decimal = Decimal("0.01")
    welcome_bonus: int = 100
    referral_bonus: int = 200
    # The referral bonus only for a qualifying purchase of at least this much (and kept
    # past the return window: `domain.referrals`).
    referral_min_purchase: Decimal = Decimal("10.00")
    # Per customer and day of `time_zone`; 0: no ceiling (on by default: issue 19).
    max_points_per_day: int = 5000
    # The program's time zone (an IANA name): where its days start, for the velocity guard.
    time_zone: str = "UTC"
    pending_days: int = 0
    validity_months: int = 12
    hold_timeout_minutes: int = 15
    expiry_warning_days: int = 30
    # None: a lapsed member is made no offer.
    win_back_offer: WinBackOffer | None = None
    tier_multipliers: dict[str, Decimal] = field(
        default_factory=lambda: {
            "bronze": Decimal("1.0"),
            "silver": Decimal("1.25"),
            "gold": Decimal("1.5"),
            "platinum": Decimal("2.0"),
        }
    )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def expiry_for(self, earned_at: datetime) -> datetime:
        return add_months(earned_at, self.validity_months)

    def available_from(self, earned_at: datetime) -> datetime:
        return earned_at + timedelta(days=self.pending_days)


@dataclass(frozen=True)
class LedgerEntry:
    """One movement of points; every earning is also a lot that expires."""

    entry_id: str
    customer_id: str
    kind: EntryKind
    points: int
    reason: str
    occurred_at: datetime
    available_at: datetime
    expires_at: datetime | None = None
    purchase_id: str | None = None
    rule_ids: tuple[str, ...] = ()
    # A lot's issuing partner; a spend's honouring partner (and store, and the catalogue's
    # reward it paid for); None: the program itself.
    partner_id: str | None = None
    store_id: str | None = None
    reward_id: str | None = None


@dataclass(frozen=True)
class Member:
    """A customer as points knows them: enrolled at a partner; the welcome bonus is theirs
    the first time they are added."""

    customer_id: str
    partner_id: str
    enrolled_at: datetime
    referred_by: str | None = None


@dataclass(frozen=True)
class TierAssignment:
    """The tier a customer has from `effective_at` on, as the tiers service announced it."""

    customer_id: str
    tier: str
    effective_at: datetime


def latest_tier(current: TierAssignment | None, change: TierAssignment) -> TierAssignment:
    """Tier changes may arrive out of order (they travel on their own topic): the one that
    took effect last wins, and of two equally recent ones the one that arrived last."""
    if current is None or current.effective_at <= change.effective_at:
        return change
    return current


@dataclass(frozen=True)
class Expiry:
    points: int
    expires_at: datetime


@dataclass(frozen=True)
class Balance:
    customer_id: str
    available: int
    pending: int
    debt: int
    lifetime_earned: int
    next_expiries: list[Expiry]


def purchase_earning(
    program: Program,
    *,
    entry_id: str,
    customer_id: str,
    purchase_id: str,
    occurred_at: datetime,
    points: int,
    rule_ids: tuple[str, ...],
    expires_at: datetime,
    partner_id: str | None = None,
) -> LedgerEntry:
    """The lot a purchase earns (its points and rules worked out by `earning.purchase_points`),
    pending for the program's return window; issued by the purchase's partner."""
    return LedgerEntry(
        entry_id=entry_id,
        customer_id=customer_id,
        kind=EntryKind.EARN,
        points=points,
        reason="purchase",
        occurred_at=occurred_at,
        available_at=program.available_from(occurred_at),
        expires_at=expires_at,
        purchase_id=purchase_id,
        rule_ids=rule_ids,
        partner_id=partner_id,
    )


def welcome_bonus(
    program: Program,
    *,
    entry_id: str,
    customer_id: str,
    enrolled_at: datetime,
    partner_id: str | None = None,
) -> LedgerEntry:
    """Issued by the partner the member enrolled at."""
    return LedgerEntry(
        entry_id=entry_id,
        customer_id=customer_id,
        kind=EntryKind.BONUS,
        points=program.welcome_bonus,
        reason="welcome",
        occurred_at=enrolled_at,
        available_at=enrolled_at,
        expires_at=program.expiry_for(enrolled_at),
        rule_ids=("welcome",),
        partner_id=partner_id,
    )


def referral_bonus(
    program: Program,
    *,
    referred: str,
    referrer: str,
    purchased_at: datetime,
    partner_id: str | None = None,
    purchase_id: str | None = None,
    total: Decimal | None = None,
) -> LedgerEntry | None:
    """The referrer's bonus for the referred customer's first purchase of at least
    `referral_min_purchase` (`total`; None: not checked): one per referred customer (its id
    is theirs), none for referring oneself; issued by the partner of that purchase, whose id
    it names, and pending for the return window like the purchase's own points: a refund
    within it may take it back (`domain.referrals`)."""
    if referrer == referred or program.referral_bonus <= 0:
        return None
    if total is not None and (total <= 0 or total < program.referral_min_purchase):
        return None
    return LedgerEntry(
        entry_id=f"referral:{referred}",
        customer_id=referrer,
        kind=EntryKind.BONUS,
        points=program.referral_bonus,
        reason="referral",
        occurred_at=purchased_at,
        available_at=program.available_from(purchased_at),
        expires_at=program.expiry_for(purchased_at),
        purchase_id=purchase_id,
        rule_ids=("referral",),
        partner_id=partner_id,
    )


def add_months(instant: datetime, months: int) -> datetime:
    """Same day and time `months` later; the month's last day when that day does not exist."""
    month_index = instant.month - 1 + months
    year, month = instant.year + month_index // 12, month_index % 12 + 1
    if instant.day <= 28:  # every month has the day: no calendar to consult (once a purchase)
        return instant.replace(year=year, month=month)
    day = min(instant.day, calendar.monthrange(year, month)[1])
    return instant.replace(year=year, month=month, day=day)
