"""What the engagement API takes and answers; separate from the domain so either can change
alone. Every value from outside is bounded here, once."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from shared import bounds
from shared.messaging.events import SegmentName, TierName

StampsRequired = Annotated[int, Field(ge=1, le=1_000)]
RewardPoints = Annotated[int, Field(ge=1, le=1_000_000)]
GoalKind = Literal[
    "purchases", "spend", "distinct_partners", "categories", "referrals", "streak_weeks"
]


class RewardIn(BaseModel):
    """Points, or a reward of the catalogue (which may be a coupon): exactly one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    points: RewardPoints | None = None
    reward_id: bounds.Identifier | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> RewardIn:
        if (self.points is None) == (self.reward_id is None):
            raise ValueError("give either points or reward_id")
        return self


class RewardOut(BaseModel):
    points: int | None = None
    reward_id: str | None = None


class StampCardIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: bounds.Label
    stamps_required: StampsRequired
    per: Literal["purchase", "item"] = "purchase"
    category: bounds.Label | None = None
    partner_id: bounds.Identifier | None = None
    store_id: bounds.Identifier | None = None
    min_amount: bounds.AmountIn | None = None
    min_tier: TierName | None = None
    tier: TierName | None = None
    segment: SegmentName | None = None
    reward: RewardIn
    starts_at: bounds.InstantIn
    ends_at: bounds.InstantIn | None = None


class StampCardOut(BaseModel):
    id: str
    name: str
    stamps_required: int
    per: str
    category: str | None
    partner_id: str | None
    store_id: str | None
    min_amount: bounds.MoneyOut | None
    min_tier: str | None
    tier: str | None
    segment: str | None
    reward: RewardOut
    starts_at: datetime
    ends_at: datetime | None


class StampCardListOut(BaseModel):
    items: list[StampCardOut]


class GoalIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: GoalKind
    # A count (purchases, partners, categories, referrals, weeks) or an amount (spend).
    target: Annotated[Decimal, Field(gt=0, le=bounds.MAX_AMOUNT, decimal_places=2)]
    category: bounds.Label | None = None
    partner_id: bounds.Identifier | None = None


class ChallengeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: bounds.Label
    goal: GoalIn
    starts_at: bounds.InstantIn
    ends_at: bounds.InstantIn
    reward: RewardIn
    badge: bounds.Label | None = None
    min_tier: TierName | None = None
    tier: TierName | None = None
    segment: SegmentName | None = None


class GoalOut(BaseModel):
    kind: str
    target: bounds.MoneyOut
    category: str | None
    partner_id: str | None


class ChallengeOut(BaseModel):
    id: str
    name: str
    goal: GoalOut
    starts_at: datetime
    ends_at: datetime | None
    reward: RewardOut | None
    badge: str | None
    min_tier: str | None
    tier: str | None
    segment: str | None


class ChallengeListOut(BaseModel):
    items: list[ChallengeOut]


class MemberStampCardOut(BaseModel):
    card_id: str
    name: str
    stamps: int
    stamps_required: int
    completed_count: int
    per: str
    reward: RewardOut
    ends_at: datetime | None


class MemberStampCardsOut(BaseModel):
    customer_id: str
    items: list[MemberStampCardOut]


class MemberChallengeOut(BaseModel):
    challenge_id: str
    name: str
    goal: GoalOut
    progress: bounds.MoneyOut
    target: bounds.MoneyOut
    completed_at: datetime | None
    starts_at: datetime
    ends_at: datetime | None
    badge: str | None
    reward: RewardOut | None


class MemberChallengesOut(BaseModel):
    customer_id: str
    items: list[MemberChallengeOut]


class BadgeOut(BaseModel):
    badge: str
    challenge_id: str
    earned_at: datetime


class BadgesOut(BaseModel):
    customer_id: str
    items: list[BadgeOut]


# Birthdays -------------------------------------------------------------


class BirthdayRewardIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reward: RewardIn
    min_tier: TierName | None = None


class BirthdayRewardOut(BaseModel):
    reward: RewardOut
    min_tier: str | None


# Surprises -------------------------------------------------------------

_CHANCE_PATTERN = r"^(0(\.[0-9]{1,9})?|1(\.0{1,9})?)$"


def _chance_text(value: object) -> object:
    """A chance only as a JSON string ("0.02"): a JSON number would pass through a float."""
    if not isinstance(value, str):
        raise ValueError('give the chance as a string, e.g. "0.02"')
    return value


Chance = Annotated[
    Decimal,
    BeforeValidator(_chance_text),
    Field(gt=0, le=1, decimal_places=9),
    WithJsonSchema(
        {"type": "string", "pattern": _CHANCE_PATTERN, "examples": ["0.02"]}, mode="validation"
    ),
]


class SurpriseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: bounds.Label
    chance: Chance
    reward: RewardIn
    min_tier: TierName | None = None
    tier: TierName | None = None
    segment: SegmentName | None = None
    partner_id: bounds.Identifier | None = None
    store_id: bounds.Identifier | None = None
    category: bounds.Label | None = None
    starts_at: bounds.InstantIn
    ends_at: bounds.InstantIn | None = None
    daily_budget: Annotated[int, Field(ge=1, le=1_000_000_000)] | None = None  # points a day
    cooldown_days: Annotated[int, Field(ge=1, le=3650)] | None = None


class SurpriseOut(BaseModel):
    id: str
    name: str
    chance: str
    reward: RewardOut
    min_tier: str | None
    tier: str | None
    segment: str | None
    partner_id: str | None
    store_id: str | None
    category: str | None
    starts_at: datetime
    ends_at: datetime | None
    daily_budget: int | None
    cooldown_days: int | None


class SurpriseListOut(BaseModel):
    items: list[SurpriseOut]


class DrawOut(BaseModel):
    """One purchase's draw for a rule, as an auditor recomputes it: `digest` is
    HMAC-SHA256(secret, `message`) in hex, `number` its first 8 bytes (big-endian), `value`
    number / 2**64 (truncated to 20 places), a win when it is below `chance`."""

    surprise_id: str
    partner_id: str
    purchase_id: str
    message: str
    digest: str
    number: str
    value: str
    chance: str
    wins: bool
    grant_id: str
    granted: bool  # a win engagement admitted (not held back by a cooldown or the budget)
    revoked: bool  # a whole refund of the purchase took it back


# Feedback --------------------------------------------------------------

FeedbackKindIn = Literal["review", "survey", "nps"]


class FeedbackRewardIn(BaseModel):
    """The reward for feedback that names a purchase, once per purchase; `kinds`: the kinds
    of feedback it is given for (all three when left out); `name`: what the member reads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reward: RewardIn
    kinds: list[FeedbackKindIn] | None = Field(default=None, min_length=1, max_length=3)
    name: bounds.Label | None = None


class FeedbackRewardOut(BaseModel):
    reward: RewardOut
    kinds: list[str]
    name: str


class NpsOut(BaseModel):
    """The Net Promoter Score of the `nps` feedback given in the window (`from` included, `to`
    excluded) at the partner and store asked for (all when not named): promoters score 9 to
    10, passives 7 to 8, detractors 0 to 6; `nps` = % promoters - % detractors, one decimal,
    null without any answer."""

    partner_id: str | None
    store_id: str | None
    from_: datetime | None = Field(serialization_alias="from")
    to: datetime | None
    count: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None


# Changes to rules in force (PATCH, part U) ------------------------------


class RulePatchIn(BaseModel):
    """A JSON merge patch of a rule in force: the fields sent change (`reward` is replaced
    whole), an optional one sent as null is cleared. A field that would change what members'
    progress already means (`FROZEN`: the start, the scope, a card's stamps, a challenge's
    goal) is refused by name: end the rule and create a new one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    KIND: ClassVar[str] = "rule"
    FROZEN: ClassVar[tuple[str, ...]] = ("starts_at",)
    REQUIRED: ClassVar[tuple[str, ...]] = ("name", "reward")

    name: bounds.Label | None = None
    reward: RewardIn | None = None
    ends_at: bounds.InstantIn | None = None
    min_tier: TierName | None = None
    # Targeting may change like min_tier: the next purchases read follow it.
    tier: TierName | None = None
    segment: SegmentName | None = None

    @model_validator(mode="before")
    @classmethod
    def _frozen_fields_are_refused(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in cls.FROZEN:
                if name in data:
                    raise ValueError(
                        f"{name} cannot be changed on a {cls.KIND} in force: end the "
                        f"{cls.KIND} (DELETE) and create a new one"
                    )
        return data

    @model_validator(mode="after")
    def _required_fields_are_not_cleared(self) -> RulePatchIn:
        for required in self.REQUIRED:
            if required in self.model_fields_set and getattr(self, required) is None:
                raise ValueError(f"{required} cannot be null")
        return self


class StampCardPatchIn(RulePatchIn):
    KIND: ClassVar[str] = "stamp card"
    FROZEN: ClassVar[tuple[str, ...]] = (
        "stamps_required",
        "per",
        "category",
        "partner_id",
        "store_id",
        "starts_at",
    )

    min_amount: bounds.AmountIn | None = None


class ChallengePatchIn(RulePatchIn):
    KIND: ClassVar[str] = "challenge"
    FROZEN: ClassVar[tuple[str, ...]] = ("goal", "starts_at")
    REQUIRED: ClassVar[tuple[str, ...]] = ("name", "reward", "ends_at")

    badge: bounds.Label | None = None


class SurprisePatchIn(RulePatchIn):
    KIND: ClassVar[str] = "surprise"
    FROZEN: ClassVar[tuple[str, ...]] = ("category", "partner_id", "store_id", "starts_at")
    REQUIRED: ClassVar[tuple[str, ...]] = ("name", "reward", "chance")

    chance: Chance | None = None
    daily_budget: Annotated[int, Field(ge=1, le=1_000_000_000)] | None = None
    cooldown_days: Annotated[int, Field(ge=1, le=3650)] | None = None
