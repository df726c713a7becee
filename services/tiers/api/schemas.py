"""What the tiers API answers; separate from the domain so either can change alone."""

from datetime import datetime

from pydantic import BaseModel

from shared.events import Money


class CustomerTierOut(BaseModel):
    customer_id: str
    tier: str
    since: datetime
    qualifying_spend: Money
    next_tier: str | None
    amount_to_next_tier: Money | None
    review_at: datetime


class TierDefinitionOut(BaseModel):
    name: str
    threshold: Money


class TierProgramOut(BaseModel):
    tiers: list[TierDefinitionOut]
    currency: str
    basis: str
    qualifying_window_days: int
    review_period_days: int
    downgrade_policy: str
