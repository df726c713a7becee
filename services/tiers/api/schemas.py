"""What the tiers API answers; separate from the domain so either can change alone."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from shared.bounds import Identifier, InstantIn, Label, MoneyOut
from shared.messaging.events import TierName


class CustomerTierOut(BaseModel):
    customer_id: Identifier
    tier: str
    since: datetime
    # A sum over a year of purchases: far beyond what one purchase may be.
    qualifying_spend: MoneyOut
    next_tier: str | None
    amount_to_next_tier: MoneyOut | None
    review_at: datetime
    # What the qualifying spend as of the review still lacks to keep the tier (0: kept).
    amount_to_keep_tier: MoneyOut


class TierDefinitionOut(BaseModel):
    name: str
    threshold: MoneyOut


class TierProgramOut(BaseModel):
    tiers: list[TierDefinitionOut]
    currency: str
    basis: str
    qualifying_window_days: int
    review_period_days: int
    downgrade_policy: str
    downgrade_warning_days: int
    time_zone: str  # where calendar years begin and end, for the calendar_year basis


class TierChangeOut(BaseModel):
    from_tier: str
    to_tier: str
    direction: str
    reason: str
    effective_at: datetime
    review_at: datetime | None  # unknown for changes recorded before reviews existed
    actor: str | None  # the staff member behind an override; null for the program's rules


class TierHistoryOut(BaseModel):
    customer_id: Identifier
    changes: list[TierChangeOut]  # newest first


class TierOverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: TierName
    reason: Label
    actor: Label  # who decided: the admin token names no one
    until: InstantIn | None = None  # the override's review; a year after it by default
