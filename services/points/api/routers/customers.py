"""A customer's points: balance, ledger and the personal offers running."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.points.api.deps import (
    CampaignsDep,
    ClockDep,
    LedgerDep,
    ReadOrTillCaller,
    ReadScope,
)
from services.points.api.schemas import BalanceOut, LedgerCursor, LedgerPageOut, OfferListOut
from services.points.usecases import customers
from shared.bounds import Identifier

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.get("/{customer_id}/balance")
async def get_balance(
    customer_id: Annotated[Identifier, Path()],
    ledger: LedgerDep,
    clock: ClockDep,
    _: ReadOrTillCaller,
) -> BalanceOut:
    return await customers.get_balance(ledger, customer_id, clock.now())


@router.get("/{customer_id}/ledger")
async def get_ledger(
    customer_id: Annotated[Identifier, Path()],
    ledger: LedgerDep,
    _: ReadScope,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[LedgerCursor | None, Query()] = None,
) -> LedgerPageOut:
    before_seq = int(cursor) if cursor else None
    return await customers.get_ledger(ledger, customer_id, limit=limit, before_seq=before_seq)


@router.get("/{customer_id}/offers")
async def get_offers(
    customer_id: Annotated[Identifier, Path()],
    campaigns: CampaignsDep,
    clock: ClockDep,
    _: ReadScope,
) -> OfferListOut:
    return await customers.get_offers(campaigns, customer_id, clock.now())
