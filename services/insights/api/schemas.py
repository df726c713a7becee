"""The insights API's bodies: each value from outside bounded here, once."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared import bounds
from shared.bounds import AmountIn, MoneyOut

Stage = Literal["new", "active", "at_risk", "lapsed", "won_back"]
TypeName = Literal["happy", "price", "program", "convenience", "perks", "truly_loyal"]
Tier = Literal["bronze", "silver", "gold", "platinum"]
ScoreIn = Annotated[int, Field(ge=1, le=5)]
# A custom segment's own name: never a colon, so it cannot pass for a built-in one.
CustomName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CriteriaIn(_In):
    """Every condition given must hold; a list is any of its values."""

    lifecycle: Annotated[list[Stage], Field(max_length=5)] = []
    loyalty_types: Annotated[list[TypeName], Field(max_length=6)] = []
    tiers: Annotated[list[Tier], Field(max_length=4)] = []
    min_r: ScoreIn | None = None
    min_f: ScoreIn | None = None
    min_m: ScoreIn | None = None
    max_r: ScoreIn | None = None
    max_f: ScoreIn | None = None
    max_m: ScoreIn | None = None
    max_recency_days: Annotated[int, Field(ge=0, le=3650)] | None = None
    min_frequency: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    min_monetary: AmountIn | None = None

    @model_validator(mode="after")
    def _something(self) -> CriteriaIn:
        if not self.model_dump(exclude_defaults=True):
            raise ValueError("give at least one condition")
        for name in ("r", "f", "m"):
            low, high = getattr(self, f"min_{name}"), getattr(self, f"max_{name}")
            if low is not None and high is not None and low > high:
                raise ValueError(f"min_{name} is above max_{name}")
        return self


class SegmentIn(_In):
    name: CustomName
    description: Annotated[str, Field(max_length=500, pattern=bounds.PRINTABLE_PATTERN)] = ""
    criteria: CriteriaIn


class SegmentPatchIn(_In):
    description: Annotated[str, Field(max_length=500, pattern=bounds.PRINTABLE_PATTERN)] | None = (
        None
    )
    criteria: CriteriaIn | None = None


class RfmOut(BaseModel):
    recency_days: int | None
    frequency: int
    monetary: MoneyOut
    r: int | None
    f: int | None
    m: int | None


class LoyaltyTypeOut(BaseModel):
    type: str
    reasons: list[str]


class CustomerInsightsOut(BaseModel):
    customer_id: str
    as_of: datetime
    rfm: RfmOut
    lifecycle: str
    lifecycle_reason: str
    loyalty_types: list[LoyaltyTypeOut]
    tier: str
    segments: list[str]
    # The run of the `segments` job whose quintiles scored r, f and m (none: never run).
    quintiles_as_of: datetime | None


class SegmentOut(BaseModel):
    name: str
    kind: Literal["built_in", "custom"]
    description: str
    criteria: dict[str, object] | None = None
    members: int


class SegmentListOut(BaseModel):
    items: list[SegmentOut]


class SegmentMemberOut(BaseModel):
    customer_id: str
    since: datetime
    reasons: list[str]


class SegmentMembersOut(BaseModel):
    items: list[SegmentMemberOut]
    next_cursor: str | None


# --- Program KPIs (GET /v1/kpis) -----------------------------------------------------------
# A share of a whole, four decimals, as a string; null where the whole is zero.
Ratio = Annotated[str, Field(pattern=r"^[0-9]+\.[0-9]{4}$", examples=["0.2500"])]


class PeriodOut(BaseModel):
    from_: datetime = Field(serialization_alias="from")
    to: datetime


class PointsKpisOut(BaseModel):
    issued: int
    redeemed: int
    expired: int
    reversed: int
    adjusted_out: int


class LiabilityPointOut(BaseModel):
    at: datetime
    points: int


class TierDistributionOut(BaseModel):
    bronze: int
    silver: int
    gold: int
    platinum: int


class NpsKpiOut(BaseModel):
    responses: int
    promoters: int
    passives: int
    detractors: int
    score: int | None


class WinBackOut(BaseModel):
    lapsed_at_start: int
    won_back: int
    rate: Ratio | None


class KpisOut(BaseModel):
    period: PeriodOut
    active_members: int
    repeat_purchase_rate: Ratio | None
    average_basket: MoneyOut | None
    points: PointsKpisOut
    breakage: Ratio | None
    redemption_rate: Ratio | None
    liability_interval: Literal["day", "week"]
    liability_trend: list[LiabilityPointOut]
    tier_distribution: TierDistributionOut
    nps: NpsKpiOut
    win_back: WinBackOut
