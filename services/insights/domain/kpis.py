"""The program's KPIs over a period, from the counts the database makes (pure: no I/O, the
time passed in).

The period is [from, to): a fact at exactly `to` belongs to the next one. A ratio has four
decimals and an amount two, halves rounded away from zero; either is None when what it
divides by is zero. The NPS is a whole number, rounded the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from services.insights.domain.model import TIERS

DEFAULT_SPAN = timedelta(days=30)
MAX_SPAN = timedelta(days=3 * 365 + 1)  # three years, one of them a leap year
# Up to this span the liability trend has a point a day; over it, a point a week.
DAILY_UP_TO = timedelta(days=92)
RATIO_PLACES = Decimal("0.0001")
CENTS = Decimal("0.01")
NPS_PROMOTER_MIN = 9  # the standard NPS's, not the program's feedback rules
NPS_DETRACTOR_MAX = 6

Interval = Literal["day", "week"]


class InvalidPeriod(ValueError):
    """A period the KPIs are not computed over (its text says why, for the client)."""


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    @property
    def interval(self) -> Interval:
        return trend_interval(self.start, self.end)


def period(start: datetime | None, end: datetime | None, now: datetime) -> Period:
    """`to` defaults to now and `from` to 30 days before `to`; `from` must be before `to`,
    at most `MAX_SPAN` before it."""
    end = end or now
    start = start or end - DEFAULT_SPAN
    if start >= end:
        raise InvalidPeriod("from must be before to")
    if end - start > MAX_SPAN:
        raise InvalidPeriod(f"the period spans more than {MAX_SPAN.days} days (three years)")
    return Period(start, end)


def trend_interval(start: datetime, end: datetime) -> Interval:
    return "day" if end - start <= DAILY_UP_TO else "week"


@dataclass(frozen=True)
class PurchaseCounts:
    """Purchases in the period not wholly refunded by its end, and the lapsed members."""

    active_members: int = 0
    repeat_members: int = 0  # of the active, those with two such purchases or more
    purchases: int = 0
    net_total: Decimal = Decimal("0.00")  # their totals less their refunds made by the end
    lapsed_at_start: int = 0
    won_back: int = 0  # of the lapsed, those active in the period


@dataclass(frozen=True)
class PointsCounts:
    """Points moved in the period, each a positive number."""

    issued: int = 0  # earned, imported and adjusted up
    redeemed: int = 0
    expired: int = 0
    reversed: int = 0
    adjusted_out: int = 0  # adjusted down


@dataclass(frozen=True)
class NpsCounts:
    responses: int = 0
    promoters: int = 0
    passives: int = 0
    detractors: int = 0


@dataclass(frozen=True)
class LiabilityPoint:
    at: datetime
    points: int


@dataclass(frozen=True)
class Counts:
    purchases: PurchaseCounts
    points: PointsCounts
    nps: NpsCounts
    tiers: Mapping[str, int]  # members per tier as of the end
    liability: Sequence[LiabilityPoint]


@dataclass(frozen=True)
class Nps:
    counts: NpsCounts
    score: int | None


@dataclass(frozen=True)
class WinBack:
    lapsed_at_start: int
    won_back: int
    rate: Decimal | None


@dataclass(frozen=True)
class Kpis:
    period: Period
    active_members: int
    repeat_purchase_rate: Decimal | None
    average_basket: Decimal | None
    points: PointsCounts
    breakage: Decimal | None
    redemption_rate: Decimal | None
    liability_trend: tuple[LiabilityPoint, ...]
    tier_distribution: dict[str, int]
    nps: Nps
    win_back: WinBack


def ratio(part: int, whole: int) -> Decimal | None:
    if whole == 0:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(RATIO_PLACES, rounding=ROUND_HALF_UP)


def average(total: Decimal, count: int) -> Decimal | None:
    if count == 0:
        return None
    return (total / Decimal(count)).quantize(CENTS, rounding=ROUND_HALF_UP)


def nps_score(promoters: int, detractors: int, responses: int) -> int | None:
    if responses == 0:
        return None
    exact = Decimal(100 * (promoters - detractors)) / Decimal(responses)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def tier_distribution(found: Mapping[str, int]) -> dict[str, int]:
    """Every tier, in order, with 0 where no member is in it (events and the rules name no
    other tier)."""
    return {tier: found.get(tier, 0) for tier in TIERS}


def kpis(of: Period, counts: Counts) -> Kpis:
    bought, points = counts.purchases, counts.points
    return Kpis(
        period=of,
        active_members=bought.active_members,
        repeat_purchase_rate=ratio(bought.repeat_members, bought.active_members),
        average_basket=average(bought.net_total, bought.purchases),
        points=points,
        breakage=ratio(points.expired, points.issued),
        redemption_rate=ratio(points.redeemed, points.issued),
        liability_trend=tuple(counts.liability),
        tier_distribution=tier_distribution(counts.tiers),
        nps=Nps(
            counts.nps,
            nps_score(counts.nps.promoters, counts.nps.detractors, counts.nps.responses),
        ),
        win_back=WinBack(
            lapsed_at_start=bought.lapsed_at_start,
            won_back=bought.won_back,
            rate=ratio(bought.won_back, bought.lapsed_at_start),
        ),
    )
