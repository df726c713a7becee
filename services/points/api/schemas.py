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


class CampaignListOut(BaseModel):
    items: list[CampaignOut]


# --- Redemptions ---------------------------------------------------------------------------

SpendPoints = Annotated[int, Field(ge=1, le=bounds.MAX_POINTS)]


class RedemptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    points: SpendPoints
    reward: bounds.Label


class RedemptionOut(BaseModel):
    redemption_id: str
    points: int
    available_after: int


# --- Adjustments -------------------------------------------------------------------------

# Positive or negative, never nothing; within what a goodwill gesture or a correction needs.
AdjustmentPoints = Annotated[int, Field(ge=-1_000_000, le=1_000_000)]


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    points: AdjustmentPoints
    reason: bounds.Label
    actor: bounds.Label

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


class LiabilityOut(BaseModel):
    partner_id: str
    outstanding: int  # in_lots - debt: what the partner still owes in points
    in_lots: int  # available and pending: issued - spent - expired - reversed
    debt: int  # what refunds took beyond the lots: customers owe it back
    issued: int
    spent: int
    expired: int
    reversed: int


class LiabilityReportOut(BaseModel):
    as_of: datetime
    partners: list[LiabilityOut]
    total: LiabilityOut


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
