"""What the points API answers; separate from the domain so either can change alone."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from pydantic.json_schema import WithJsonSchema

from shared import bounds
from shared.messaging.events import SegmentName, TierName

# Ledger entries are numbered by a BIGINT identity: a cursor is one of those numbers.
MAX_CURSOR = 2**63 - 1


def _within_bigint(cursor: str) -> str:
    if int(cursor) > MAX_CURSOR:
        raise ValueError("not a cursor this API gave: use next_cursor from the previous page")
    return cursor


LedgerCursor = Annotated[str, Field(pattern=r"^[0-9]{1,19}$"), AfterValidator(_within_bigint)]


class ExpiryOut(BaseModel):
    points: bounds.Points
    expires_at: datetime


class BalanceOut(BaseModel):
    customer_id: bounds.Identifier
    available: int
    pending: int
    debt: int
    lifetime_earned: int
    next_expiries: list[ExpiryOut]


class LotDrawnOut(BaseModel):
    lot_id: str
    points: int  # drawn from the lot; negative when given back (a void, a lapse, a release)


def _is_none(value: object) -> bool:
    return value is None


class LedgerEntryOut(BaseModel):
    id: str
    kind: str
    points: int
    reason: str
    occurred_at: datetime
    available_at: datetime
    expires_at: datetime | None
    purchase_id: str | None
    rule_ids: list[str]
    lots: list[LotDrawnOut]  # the lots a spend, hold, expiry or reversal drew from
    # Who made an entry a person made (a staff adjustment: `admin:…`, `console:staff:…`).
    actor: str | None = Field(default=None, exclude_if=_is_none)


class LedgerPageOut(BaseModel):
    entries: list[LedgerEntryOut]
    next_cursor: Annotated[str, Field(pattern=r"^[0-9]{1,19}$")] | None


# --- Campaigns ---------------------------------------------------------------------------

MULTIPLIER_PATTERN = r"^[0-9]{1,3}(\.[0-9]{1,2})?$"
MAX_BONUS = 1_000_000
MAX_VALIDITY_DAYS = 3650


def _multiplier_text(value: object) -> object:
    """A multiplier only as a string like "2" or "1.5", as money is: never a binary float."""
    if not isinstance(value, str) or not re.fullmatch(MULTIPLIER_PATTERN, value):
        raise ValueError('a multiplier must be a string like "2" or "1.5"')
    return Decimal(value)


# At least 1 (a campaign boosts), at most what keeps a purchase's points within the ledger.
MultiplierIn = Annotated[
    Decimal,
    BeforeValidator(_multiplier_text),
    Field(ge=1, le=bounds.MAX_CAMPAIGN_MULTIPLIER),
    WithJsonSchema(
        {"type": "string", "pattern": MULTIPLIER_PATTERN, "examples": ["2"]}, mode="validation"
    ),
]
Bonus = Annotated[int, Field(ge=1, le=MAX_BONUS)]
ValidityDays = Annotated[int, Field(ge=1, le=MAX_VALIDITY_DAYS)]


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: bounds.Label
    multiplier: MultiplierIn | None = None
    bonus: Bonus | None = None
    partner_id: bounds.Identifier | None = None
    store_id: bounds.Identifier | None = None
    category: bounds.Label | None = None
    starts_at: bounds.InstantIn
    ends_at: bounds.InstantIn
    validity_days: ValidityDays | None = None
    # Only purchases of members of this tier (as the tiers service last said) and in this
    # segment (as insights last said) when points applies them.
    tier: TierName | None = None
    segment: SegmentName | None = None


class CampaignPatchIn(BaseModel):
    """The fields to change; an optional field sent as null is cleared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: bounds.Label | None = None
    multiplier: MultiplierIn | None = None
    bonus: Bonus | None = None
    partner_id: bounds.Identifier | None = None
    store_id: bounds.Identifier | None = None
    category: bounds.Label | None = None
    starts_at: bounds.InstantIn | None = None
    ends_at: bounds.InstantIn | None = None
    validity_days: ValidityDays | None = None
    tier: TierName | None = None
    segment: SegmentName | None = None

    @model_validator(mode="after")
    def _required_fields_are_not_cleared(self) -> CampaignPatchIn:
        for required in ("name", "starts_at", "ends_at"):
            if required in self.model_fields_set and getattr(self, required) is None:
                raise ValueError(f"{required} cannot be null")
        return self

    def changes(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.model_fields_set}


def _plain_decimal(value: Decimal) -> str:
    """ "2" for 2 and 2.00, "1.5" for 1.50: the same answer whichever way it was stored."""
    return format(value.normalize(), "f")


_PLAIN_DECIMAL = PlainSerializer(_plain_decimal, return_type=str, when_used="json")


class CampaignOut(BaseModel):
    id: bounds.Identifier
    name: str
    multiplier: Annotated[Decimal, _PLAIN_DECIMAL] | None
    bonus: int | None
    partner_id: str | None
    store_id: str | None
    category: str | None
    starts_at: datetime
    ends_at: datetime
    validity_days: int | None
    # Left out when the campaign is for every member.
    tier: TierName | None = Field(default=None, exclude_if=_is_none)
    segment: str | None = Field(default=None, exclude_if=_is_none)


class CampaignListOut(BaseModel):
    items: list[CampaignOut]


class OfferOut(BaseModel):
    """A personal offer: a campaign of one member's (a win-back offer)."""

    id: str
    reason: str
    name: str
    multiplier: Annotated[Decimal, _PLAIN_DECIMAL] | None
    bonus: int | None
    starts_at: datetime
    ends_at: datetime


class OfferListOut(BaseModel):
    items: list[OfferOut]


# --- Redemptions ---------------------------------------------------------------------------

SpendPoints = Annotated[int, Field(ge=1, le=bounds.MAX_POINTS)]


class RedemptionIn(BaseModel):
    """A free-form redemption `{"points", "reward"}`, or a reward of the catalogue
    `{"reward_id"}` (which issues a coupon)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    points: SpendPoints | None = None
    reward: bounds.Label | None = None
    reward_id: bounds.Identifier | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> RedemptionIn:
        free_form = self.points is not None or self.reward is not None
        if self.reward_id is not None and free_form:
            raise ValueError("send either reward_id, or points and reward; not both")
        if self.reward_id is None and (self.points is None or self.reward is None):
            raise ValueError(
                "send points and reward (a free-form redemption) or reward_id (a reward of "
                "the catalogue)"
            )
        return self


class CouponIssuedOut(BaseModel):
    coupon_id: str
    code: str  # XXXX-XXXX-XXXX-XXXX
    expires_at: datetime


class RedemptionOut(BaseModel):
    redemption_id: str
    points: int
    reward_id: str | None = None  # none: a free-form redemption
    coupon: CouponIssuedOut | None = None
    available_after: int


# --- Adjustments -------------------------------------------------------------------------

# Positive or negative, never nothing; within what a goodwill gesture or a correction needs.
AdjustmentPoints = Annotated[int, Field(ge=-1_000_000, le=1_000_000)]


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    points: AdjustmentPoints
    reason: bounds.Label
    # No `actor`: who adjusts is the credential the call carries (a body naming one is a 422).

    @model_validator(mode="after")
    def _moves_some_points(self) -> AdjustmentIn:
        if self.points == 0:
            raise ValueError("points: an adjustment moves some points, positive or negative")
        return self


class AdjustmentOut(BaseModel):
    adjustment_id: str
    points: int
    reason: str
    actor: str
    available_after: int


# --- Held earnings (the velocity guard) ---------------------------------------------------


class HeldDecisionOut(BaseModel):
    held_id: str
    customer_id: str
    points: int
    decision: Literal["released", "rejected"]
    decided_at: datetime


# --- Liability -----------------------------------------------------------------------------


def _value_text(value: Decimal) -> str:
    """An amount of the program's currency as a string, as computed: "1.50", never a float."""
    return format(value, "f")


_VALUE_OUT = PlainSerializer(_value_text, return_type=str, when_used="json")


class LiabilityOut(BaseModel):
    partner_id: str
    outstanding: int  # in_lots - debt: what the partner still owes in points
    in_lots: int  # available and pending: issued - spent - expired - reversed
    debt: int  # what refunds took beyond the lots: customers owe it back
    issued: int
    spent: int
    expired: int
    reversed: int
    # Beside what it issued: the points spent at this partner (its tills, its rewards), net
    # of what was given back for them, and what they are worth at the program's point_value.
    honoured: int = 0
    honoured_value: Annotated[Decimal, _VALUE_OUT] = Decimal(0)
    outstanding_value: Annotated[Decimal, _VALUE_OUT] = Decimal(0)


class LiabilityReportOut(BaseModel):
    as_of: datetime
    partners: list[LiabilityOut]
    total: LiabilityOut
    point_value: Annotated[Decimal, _VALUE_OUT]
    currency: str


# --- Settlement ----------------------------------------------------------------------------


class SettlementPairOut(BaseModel):
    issued_by: str  # "program": the program itself
    honoured_by: str
    points: int  # spent at `honoured_by` out of `issued_by`'s lots, net of what was given back
    value: Annotated[Decimal, _VALUE_OUT]  # what `issued_by` owes `honoured_by`


class SettlementPartnerOut(BaseModel):
    partner_id: str
    owes: Annotated[Decimal, _VALUE_OUT]
    is_owed: Annotated[Decimal, _VALUE_OUT]
    net: Annotated[Decimal, _VALUE_OUT]  # is_owed - owes; the nets add up to zero


class SettlementOut(BaseModel):
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    point_value: Annotated[Decimal, _VALUE_OUT]
    currency: str
    pairs: list[SettlementPairOut]
    partners: list[SettlementPartnerOut]


# --- Holds ---------------------------------------------------------------------------------


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    points: SpendPoints
    reward: bounds.Label


class HoldOut(BaseModel):
    hold_id: str
    points: int
    expires_at: datetime


class HoldStateOut(BaseModel):
    hold_id: str
    customer_id: str
    points: int
    reward: str
    status: str
    expires_at: datetime
    settled_at: datetime | None


# --- Rewards and coupons -------------------------------------------------------------------

VALUE_PATTERN = r"^[0-9]{1,10}(\.[0-9]{1,2})?$"
RewardKindIn = Literal["coupon", "item", "discount"]
TierIn = Literal["bronze", "silver", "gold", "platinum"]
CouponValidityDays = Annotated[int, Field(ge=1, le=3650)]
Stock = Annotated[int, Field(ge=0, le=bounds.MAX_POINTS)]
PerCustomerLimit = Annotated[int, Field(ge=1, le=1_000_000)]


def _money_text(value: object) -> object:
    """Money only as a string like "5" or "5.00": never a binary float."""
    if not isinstance(value, str) or not re.fullmatch(VALUE_PATTERN, value):
        raise ValueError('a value must be a string like "5.00"')
    return Decimal(value)


MoneyIn = Annotated[
    Decimal,
    BeforeValidator(_money_text),
    WithJsonSchema(
        {"type": "string", "pattern": VALUE_PATTERN, "examples": ["5.00"]}, mode="validation"
    ),
]


def _money(value: Decimal) -> str:
    return format(value, "f")


_MONEY_OUT = PlainSerializer(_money, return_type=str, when_used="json")


class RewardIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: bounds.Label
    points_cost: SpendPoints
    kind: RewardKindIn
    value: MoneyIn | None = None
    partner_id: bounds.Identifier | None = None
    min_tier: TierIn | None = None
    stock: Stock | None = None
    per_customer_limit: PerCustomerLimit | None = None
    starts_at: bounds.InstantIn | None = None
    ends_at: bounds.InstantIn | None = None
    coupon_validity_days: CouponValidityDays = 30
    description: bounds.Text | None = None


class RewardPatchIn(BaseModel):
    """The fields to change; an optional field sent as null is cleared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: bounds.Label | None = None
    points_cost: SpendPoints | None = None
    kind: RewardKindIn | None = None
    value: MoneyIn | None = None
    partner_id: bounds.Identifier | None = None
    min_tier: TierIn | None = None
    stock: Stock | None = None
    per_customer_limit: PerCustomerLimit | None = None
    starts_at: bounds.InstantIn | None = None
    ends_at: bounds.InstantIn | None = None
    coupon_validity_days: CouponValidityDays | None = None
    description: bounds.Text | None = None

    @model_validator(mode="after")
    def _required_fields_are_not_cleared(self) -> RewardPatchIn:
        for required in ("name", "points_cost", "kind", "coupon_validity_days"):
            if required in self.model_fields_set and getattr(self, required) is None:
                raise ValueError(f"{required} cannot be null")
        return self

    def changes(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class RewardOut(BaseModel):
    id: str
    name: str
    points_cost: int
    kind: str
    value: Annotated[Decimal, _MONEY_OUT] | None
    partner_id: str | None
    min_tier: str | None
    stock: int | None
    per_customer_limit: int | None
    starts_at: datetime | None
    ends_at: datetime | None
    coupon_validity_days: int
    description: str | None
    redeemed: int  # coupons issued so far
    created_at: datetime
    retired_at: datetime | None


class RewardListOut(BaseModel):
    items: list[RewardOut]


class CustomerRewardOut(RewardOut):
    affordable: bool
    redeemable: bool
    # Among "tier", "stock", "limit", "window", "points", in that order; empty: redeemable.
    why_not: list[str]


class CustomerRewardsOut(BaseModel):
    customer_id: str
    available: int
    rewards: list[CustomerRewardOut]


class CouponRedeemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    store_id: bounds.Identifier | None = None
    purchase_id: bounds.Identifier | None = None


class CouponRedeemedOut(BaseModel):
    coupon_id: str
    customer_id: str
    reward_id: str
    reward: str
    status: Literal["redeemed"]
    redeemed_at: datetime
    partner_id: str | None
    store_id: str | None
    purchase_id: str | None


class CouponOut(BaseModel):
    coupon_id: str
    code: str  # XXXX-XXXX-XXXX-XXXX
    customer_id: str
    reward_id: str
    reward: str
    redemption_id: str
    points: int
    status: Literal["issued", "redeemed", "expired", "voided"]
    issued_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None
    partner_id: str | None  # whose till took it
    store_id: str | None
    purchase_id: str | None
    points_returned: int | None  # on expiry: given back (0: forfeited)
    # A gift (points 0): the engagement grant that gave it, and when that grant was revoked
    # (the coupon is voided then, unless it was used or expired before).
    grant_id: str | None = None
    revoked_at: datetime | None = None


class CustomerCouponsOut(BaseModel):
    customer_id: str
    coupons: list[CouponOut]
