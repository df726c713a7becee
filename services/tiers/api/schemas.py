"""What the tiers API answers; separate from the domain so either can change alone."""

from datetime import datetime

from pydantic import BaseModel

from shared.bounds import Identifier, MoneyOut


class CustomerTierOut(BaseModel):
    customer_id: Identifier
    tier: str
    since: datetime
    # A sum over a year of purchases: far beyond what one purchase may be.
    qualifying_spend: MoneyOut
    next_tier: str | None
    amount_to_next_tier: MoneyOut | None
    review_at: datetime


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
