"""What the points API answers; separate from the domain so either can change alone."""

from datetime import datetime

from pydantic import BaseModel


class ExpiryOut(BaseModel):
    points: int
    expires_at: datetime


class BalanceOut(BaseModel):
    customer_id: str
    available: int
    pending: int
    debt: int
    lifetime_earned: int
    next_expiries: list[ExpiryOut]


class LedgerEntryOut(BaseModel):
    id: str
    kind: str
    points: int
    reason: str
    occurred_at: datetime
    available_at: datetime
    expires_at: datetime | None
    purchase_id: str | None


class LedgerPageOut(BaseModel):
    entries: list[LedgerEntryOut]
    next_cursor: str | None
