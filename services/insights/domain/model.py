"""What insights knows of a member: the facts it keeps from events, and the rules' numbers.

Every feature is a pure function of a member's facts, the instant it is read as of and the
rules (`features.py`): the consumer, the `segments` job and a read all call the same one, so a
member's insights never depend on the order the events came in, only on which came."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

LIFECYCLE_STAGES = ("new", "active", "at_risk", "lapsed", "won_back")
LOYALTY_TYPES = ("happy", "price", "program", "convenience", "perks", "truly_loyal")
TIERS = ("bronze", "silver", "gold", "platinum")
Lifecycle = Literal["new", "active", "at_risk", "lapsed", "won_back"]

ZERO = Decimal("0.00")


def purchase_key(partner_id: str, purchase_id: str) -> str:
    """A purchase's id across partners (purchase ids are unique per partner only)."""
    return f"{partner_id}:{purchase_id}"


@dataclass(frozen=True)
class Purchase:
    key: str
    occurred_at: datetime
    partner_id: str
    store_id: str | None
    total: Decimal
    refunded: Decimal = ZERO  # the refunds of it made by the instant read as of
    in_campaign: bool = False  # points applied a campaign (or offer) to it

    @property
    def net(self) -> Decimal:
        return max(self.total - self.refunded, ZERO)

    @property
    def kept(self) -> bool:
        """False once wholly refunded: a purchase taken back is no visit."""
        return self.refunded < self.total


@dataclass(frozen=True)
class Activity:
    """What the member's purchases say as of an instant (`activity.activity_of`)."""

    last_purchase_at: datetime | None = None
    # The latest purchase that ended a lapse (came `lapsed_days` or more after the one before).
    returned_at: datetime | None = None
    # In the window: purchases kept, their net amount, how many a campaign boosted, the
    # usual place and its purchases, and how regular the gaps between purchases are.
    frequency: int = 0
    monetary: Decimal = ZERO
    campaign_purchases: int = 0
    usual_place: str | None = None
    usual_place_purchases: int = 0
    rhythm_variation: Decimal = Decimal(0)


@dataclass(frozen=True)
class PointsUse:
    """The member's points in the window: earned (purchases, bonuses, imports) and redeemed."""

    earned: int = 0
    redeemed: int = 0
    redemptions: int = 0


@dataclass(frozen=True)
class Feedback:
    given_at: datetime
    kind: str  # nps, review or survey
    score: int | None


@dataclass(frozen=True)
class MemberFacts:
    """Everything the rules read of one member, as of an instant (the repository leaves out
    what happened after it)."""

    customer_id: str
    enrolled_at: datetime | None = None
    tier: str | None = None
    activity: Activity = Activity()
    points: PointsUse = PointsUse()
    perks: int = 0  # free perks used in the window: engagement rewards and gift coupons
    referrals: int = 0  # members who enrolled naming this one, by the instant
    feedback: tuple[Feedback, ...] = ()


@dataclass(frozen=True)
class Breakpoints:
    """The program's quintile breakpoints (20th, 40th, 60th and 80th percentiles) of recency,
    frequency and monetary value among members who bought in the window, from the last run
    of the `segments` job."""

    recency_days: tuple[float, ...]
    frequency: tuple[float, ...]
    monetary: tuple[float, ...]
    as_of: datetime
    members: int


@dataclass(frozen=True)
class LifecycleRules:
    new_days: int = 30
    at_risk_days: int = 45
    lapsed_days: int = 90
    won_back_days: int = 60


@dataclass(frozen=True)
class HappyRule:
    min_purchases: int = 4
    max_redeemed_share: Decimal = Decimal("0.2")
    max_perks: int = 1


@dataclass(frozen=True)
class PriceRule:
    min_purchases: int = 3
    min_campaign_share: Decimal = Decimal("0.6")


@dataclass(frozen=True)
class ProgramRule:
    min_points_earned: int = 100
    min_redeemed_share: Decimal = Decimal("0.5")
    min_redemptions: int = 2


@dataclass(frozen=True)
class ConvenienceRule:
    min_purchases: int = 4
    min_place_share: Decimal = Decimal("0.8")
    max_rhythm_variation: Decimal = Decimal("0.5")


@dataclass(frozen=True)
class PerksRule:
    max_purchases: int = 3
    min_perks: int = 2


@dataclass(frozen=True)
class TrulyLoyalRule:
    min_f_score: int = 4
    min_m_score: int = 4
    min_referrals: int = 1
    min_promoter_feedback: int = 1


@dataclass(frozen=True)
class FeedbackRules:
    """A complaint is a score at or under these; a promoter's at or over (nps 0-10, review 1-5)."""

    nps_complaint_max: int = 6
    nps_promoter_min: int = 9
    review_complaint_max: int = 2
    review_promoter_min: int = 5

    def complaint(self, given: Feedback) -> bool:
        limits = {"nps": self.nps_complaint_max, "review": self.review_complaint_max}
        limit = limits.get(given.kind)
        return given.score is not None and limit is not None and given.score <= limit

    def promoter(self, given: Feedback) -> bool:
        limits = {"nps": self.nps_promoter_min, "review": self.review_promoter_min}
        limit = limits.get(given.kind)
        return given.score is not None and limit is not None and given.score >= limit


@dataclass(frozen=True)
class LoyaltyRules:
    happy: HappyRule = HappyRule()
    price: PriceRule = PriceRule()
    program: ProgramRule = ProgramRule()
    convenience: ConvenienceRule = ConvenienceRule()
    perks: PerksRule = PerksRule()
    truly_loyal: TrulyLoyalRule = TrulyLoyalRule()


@dataclass(frozen=True)
class Rules:
    """The numbers of every rule (services/insights/program.yaml, docs/insights.md)."""

    window_days: int = 365
    entry_tier: str = "bronze"
    lifecycle: LifecycleRules = LifecycleRules()
    loyalty: LoyaltyRules = LoyaltyRules()
    feedback: FeedbackRules = FeedbackRules()

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.window_days)

    @property
    def lapse(self) -> timedelta:
        return timedelta(days=self.lifecycle.lapsed_days)


@dataclass(frozen=True)
class Rfm:
    recency_days: int | None  # none: never bought
    frequency: int
    monetary: Decimal
    r: int | None = None  # none until the `segments` job has run once
    f: int | None = None
    m: int | None = None


@dataclass(frozen=True)
class LoyaltyType:
    type: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Features:
    customer_id: str
    as_of: datetime
    rfm: Rfm
    lifecycle: Lifecycle
    lifecycle_reason: str
    loyalty_types: tuple[LoyaltyType, ...]
    tier: str
    segments: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> reasons
