"""What the tiers API answers; separate from the domain so either can change alone."""

from datetime import datetime
from typing import Literal

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
    # Per route of the next tier, what is still missing (null: no next tier, or the next
    # tier has no such route); `next_tier_match` says whether any route or all must be met.
    amount_to_next_tier: MoneyOut | None
    review_at: datetime
    # What the standing as of the review still lacks to keep the tier (0: kept; null: the
    # tier has no such route).
    amount_to_keep_tier: MoneyOut | None
    qualifying_referrals: int = 0
    qualifying_visits: int = 0
    referrals_to_next_tier: int | None = None
    visits_to_next_tier: int | None = None
    next_tier_match: Literal["any", "all"] | None = None
    referrals_to_keep_tier: int | None = None
    visits_to_keep_tier: int | None = None
    tier_match: Literal["any", "all"] | None = None  # how the tier's own routes combine
    # Why the customer holds the tier: the reason of the change that gave it to them
    # (`import` for an imported member's opening tier); null for the entry tier they began in.
    reason: str | None = None


class TierDefinitionOut(BaseModel):
    name: str
    threshold: MoneyOut | None  # qualifying spend; null: not reached by spend
    referrals: int | None = None  # qualifying referrals; null: not reached by referrals
    visits: int | None = None  # visits; null: not reached by visits
    match: Literal["any", "all"] = "any"  # any route reaches the tier, or all must be met


class TierProgramOut(BaseModel):
    tiers: list[TierDefinitionOut]
    currency: str
    basis: str
    qualifying_window_days: int
    review_period_days: int
    downgrade_policy: str
    downgrade_warning_days: int
    time_zone: str  # where calendar years begin and end, for the calendar_year basis
    referral_return_window_days: int = 0


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
    # No `actor`: who decided is the admin credential the call carries (a body naming one is
    # a 422, extra fields being forbidden).
    until: InstantIn | None = None  # the override's review; a year after it by default
