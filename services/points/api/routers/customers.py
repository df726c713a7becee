"""A customer's points: balance and ledger."""

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.points.api.deps import ClockDep, LedgerDep, ReadScope
from services.points.api.schemas import (
    BalanceOut,
    ExpiryOut,
    LedgerCursor,
    LedgerEntryOut,
    LedgerPageOut,
    LotDrawnOut,
)
from services.points.domain.lots import balance_of
from shared.bounds import Identifier
from shared.web.problems import Problem

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.get("/{customer_id}/balance")
async def get_balance(
    customer_id: Annotated[Identifier, Path()], ledger: LedgerDep, clock: ClockDep, _: ReadScope
) -> BalanceOut:
    if not await ledger.is_known(customer_id):
        raise _unknown(customer_id)
    # Only the open lots travel; the totals over the whole history are summed by the database.
    now = clock.now()
    lots, drawn = await ledger.open_lots(customer_id, now)
    lifetime, debt = await ledger.lifetime_and_debt(customer_id)
    balance = replace(
        balance_of(customer_id, lots, now, drawn), lifetime_earned=lifetime, debt=debt
    )
    return BalanceOut(
        customer_id=balance.customer_id,
        available=balance.available,
        pending=balance.pending,
        debt=balance.debt,
        lifetime_earned=balance.lifetime_earned,
        next_expiries=[
            ExpiryOut(points=e.points, expires_at=e.expires_at) for e in balance.next_expiries
        ],
    )


@router.get("/{customer_id}/ledger")
async def get_ledger(
    customer_id: Annotated[Identifier, Path()],
    ledger: LedgerDep,
    _: ReadScope,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[LedgerCursor | None, Query()] = None,
) -> LedgerPageOut:
    if not await ledger.is_known(customer_id):
        raise _unknown(customer_id)
    page = await ledger.page(
        customer_id, limit=limit + 1, before_seq=int(cursor) if cursor else None
    )
    has_more = len(page) > limit
    page = page[:limit]
    drawn = await ledger.lots_drawn_by([entry.entry_id for _, entry in page])
    return LedgerPageOut(
        entries=[
            LedgerEntryOut(
                id=entry.entry_id,
                kind=entry.kind.value,
                points=entry.points,
                reason=entry.reason,
                occurred_at=entry.occurred_at,
                available_at=entry.available_at,
                expires_at=entry.expires_at,
                purchase_id=entry.purchase_id,
                rule_ids=list(entry.rule_ids),
                lots=[LotDrawnOut(lot_id=a.lot_id, points=a.points) for a in drawn[entry.entry_id]],
            )
            for _, entry in page
        ],
        next_cursor=str(page[-1][0]) if has_more else None,
    )


def _unknown(customer_id: str) -> Problem:
    return Problem(
        404,
        "Not found",
        f"no points are known for customer {customer_id!r}",
        slug="unknown-customer",
    )
