"""A customer's points: balance, ledger and the personal offers running."""

from dataclasses import replace
from datetime import datetime

from services.points import ports
from services.points.api.schemas import (
    BalanceOut,
    ExpiryOut,
    LedgerEntryOut,
    LedgerPageOut,
    LotDrawnOut,
    OfferListOut,
    OfferOut,
)
from services.points.domain.lots import Allocation, balance_of
from services.points.domain.model import LedgerEntry
from services.points.usecases.common import unknown_customer


async def get_balance(
    ledger: ports.LedgerRepository, customer_id: str, now: datetime
) -> BalanceOut:
    if not await ledger.is_known(customer_id):
        raise unknown_customer(customer_id)
    # Only the open lots travel; the totals over the whole history are summed by the database.
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


async def get_ledger(
    ledger: ports.LedgerRepository, customer_id: str, *, limit: int, before_seq: int | None
) -> LedgerPageOut:
    """A page of the customer's ledger, newest first, each movement with the lots it drew."""
    if not await ledger.is_known(customer_id):
        raise unknown_customer(customer_id)
    page = await ledger.page(customer_id, limit=limit + 1, before_seq=before_seq)
    has_more = len(page) > limit
    page = page[:limit]
    ids = [entry.entry_id for _, entry in page]
    drawn = await ledger.lots_drawn_by(ids)
    actors = await ledger.actors_of(ids)
    return LedgerPageOut(
        entries=[
            _entry_out(entry, drawn[entry.entry_id], actors.get(entry.entry_id))
            for _, entry in page
        ],
        next_cursor=str(page[-1][0]) if has_more else None,
    )


async def get_offers(
    campaigns: ports.CampaignRepository, customer_id: str, now: datetime
) -> OfferListOut:
    """The member's offers running now (none for a member points does not know)."""
    return OfferListOut(
        items=[
            OfferOut(
                id=offer.offer_id,
                reason=offer.reason,
                name=offer.name,
                multiplier=offer.multiplier,
                bonus=offer.bonus,
                starts_at=offer.starts_at,
                ends_at=offer.ends_at,
            )
            for offer in await campaigns.offers_of(customer_id, now)
        ]
    )


def _entry_out(entry: LedgerEntry, drawn: list[Allocation], actor: str | None) -> LedgerEntryOut:
    return LedgerEntryOut(
        id=entry.entry_id,
        kind=entry.kind.value,
        points=entry.points,
        reason=entry.reason,
        occurred_at=entry.occurred_at,
        available_at=entry.available_at,
        expires_at=entry.expires_at,
        purchase_id=entry.purchase_id,
        rule_ids=list(entry.rule_ids),
        lots=[LotDrawnOut(lot_id=a.lot_id, points=a.points) for a in drawn],
        actor=actor,
    )
