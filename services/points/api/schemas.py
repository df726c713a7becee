"""What the points API answers; separate from the domain so either can change alone."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

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
    next_cursor: Annotated[str, Field(pattern=r"^[0-9]{1,19}$")] | None
