"""Refunds: the points of a purchase taken back in proportion to what was refunded. Pure
Python: no framework, no I/O, time passed in.

The points reversed for a purchase in total are `floor(points * refunded so far / total)`,
and each refund reverses the difference to what the refunds before it reversed, so partial
refunds that add up to the whole reverse every point the purchase earned, and never more.
A reversal takes, in this order: what the velocity guard still holds back of the purchase
(so a later release cannot give refunded points back); the purchase's own points that have
expired (they are gone already: they count as taken back, never deducted a second time);
what is left of the purchase's own lots (pending or not); then the customer's other lots,
soonest-expiring first. Under the `unlimited` policy what none of that covers is debt, which
later earnings repay before anything else ("buy, refund, keep the points" is impossible);
under `within_balance` the reversal stops at what they cover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from services.points.domain.lots import Allocation, is_lot, remaining_of_lots
from services.points.domain.model import EntryKind, LedgerEntry, RefundPolicy
from services.points.domain.velocity import held_id, released_id


@dataclass(frozen=True)
class PurchaseRecord:
    """What a refund needs to know of the purchase it refunds."""

    purchase_key: str  # partner and purchase id: purchase ids are unique per partner only
    customer_id: str
    purchase_id: str
    total: Decimal
    points: int  # what the purchase earned (0: it earned nothing, nothing to reverse)
    partner_id: str  # the partner that reported it, which owes its points in the liability
    # Points as tender: the redemption that paid for part of it (`domain.tender`), whose
    # points its refunds give back in proportion.
    redemption_id: str | None = None


@dataclass(frozen=True)
class RefundRecord:
    refund_key: str  # partner and refund id
    purchase_key: str
    customer_id: str
    refund_id: str
    amount: Decimal
    occurred_at: datetime


def purchase_key(partner_id: str, purchase_id: str) -> str:
    return f"{partner_id}:{purchase_id}"


def lot_of(purchase: PurchaseRecord) -> str:
    """The id of the lot a purchase earned (the earning's ledger entry)."""
    return f"purchase:{purchase.purchase_key}"


def campaign_lot_of(purchase: PurchaseRecord) -> str:
    """The id of the lot of a purchase's points from campaigns with a validity of their own."""
    return campaign_lot_id(lot_of(purchase))


def campaign_lot_id(lot_id: str) -> str:
    return f"{lot_id}:campaign"


def earnings_of(purchase: PurchaseRecord) -> tuple[str, str]:
    """The ids of the (at most two) earnings a purchase made."""
    return lot_of(purchase), campaign_lot_of(purchase)


def own_lots(purchase: PurchaseRecord) -> frozenset[str]:
    """Every lot holding the purchase's points: its earnings, and what staff released of
    their held parts."""
    return frozenset(
        lot for earning in earnings_of(purchase) for lot in (earning, released_id(held_id(earning)))
    )


def expired_credit_id(purchase: PurchaseRecord) -> str:
    """The allocation key under which reversals record the purchase's expired points they
    counted as taken back (no lot: those points are gone)."""
    return f"expired:{lot_of(purchase)}"


def reversal_id(refund: RefundRecord) -> str:
    return f"refund:{refund.refund_key}"


def points_to_reverse(
    purchase: PurchaseRecord, refunds: Sequence[RefundRecord]
) -> list[tuple[RefundRecord, int]]:
    """Each refund of the purchase, in the order they came, with the points it reverses."""
    due: list[tuple[RefundRecord, int]] = []
    refunded = Decimal(0)
    reversed_before = 0
    for refund in refunds:
        # Ingest refuses refunds beyond the purchase's total; should one come anyway, it
        # reverses nothing beyond every point the purchase earned.
        refunded = min(refunded + refund.amount, purchase.total)
        reversed_so_far = (
            int(purchase.points * refunded // purchase.total) if purchase.total > 0 else 0
        )
        due.append((refund, reversed_so_far - reversed_before))
        reversed_before = reversed_so_far
    return due


def cover(
    entries: Sequence[LedgerEntry],
    allocations: Sequence[Allocation],
    *,
    entry_id: str,
    points: int,
    first_lots: frozenset[str],
    now: datetime,
) -> list[Allocation]:
    """Up to `points` from what is left of the lots: `first_lots` first, then every lot not
    expired at `now` (pending ones too), soonest-expiring first."""
    remaining = remaining_of_lots(entries, allocations)
    lots = [
        lot
        for lot in entries
        if is_lot(lot)
        and remaining[lot.entry_id] > 0
        and (lot.expires_at is None or lot.expires_at > now)
    ]
    lots.sort(
        key=lambda lot: (
            lot.entry_id not in first_lots,
            lot.expires_at or datetime.max.replace(tzinfo=now.tzinfo),
            lot.available_at,
            lot.entry_id,
        )
    )
    drawn: list[Allocation] = []
    wanted = points
    for lot in lots:
        if wanted <= 0:
            break
        take = min(remaining[lot.entry_id], wanted)
        drawn.append(Allocation(entry_id, lot.entry_id, take))
        wanted -= take
    return drawn


def _held_back(
    entries: Sequence[LedgerEntry], allocations: Sequence[Allocation], purchase: PurchaseRecord
) -> list[tuple[str, int]]:
    """The purchase's held parts staff have not released, with the points left in each (a
    rejected one too: those points were never the customer's, so taking them is free)."""
    ids = {entry.entry_id for entry in entries}
    held = {
        entry.entry_id: entry.points
        for entry in entries
        if entry.kind is EntryKind.HELD
        and entry.entry_id in {held_id(e) for e in earnings_of(purchase)}
        and released_id(entry.entry_id) not in ids
    }
    for allocation in allocations:
        if allocation.lot_id in held:
            held[allocation.lot_id] -= allocation.points
    return [(entry_id, left) for entry_id, left in held.items() if left > 0]


def _expired_credit(
    entries: Sequence[LedgerEntry],
    allocations: Sequence[Allocation],
    purchase: PurchaseRecord,
    now: datetime,
) -> int:
    """The purchase's own points that expired (recorded by the expiry job or not yet), less
    what earlier reversals of it already counted as taken back."""
    own = own_lots(purchase)
    expired_lots = {
        entry.entry_id: entry.points
        for entry in entries
        if entry.entry_id in own
        and is_lot(entry)
        and entry.expires_at is not None
        and entry.expires_at <= now
    }
    expiries = {entry.entry_id for entry in entries if entry.kind is EntryKind.EXPIRE}
    gone = sum(expired_lots.values())
    credit_id = expired_credit_id(purchase)
    for allocation in allocations:
        # What an expired lot lost otherwise (spent, reversed) did not expire; what earlier
        # reversals counted as expired is not counted again.
        spent_before = allocation.lot_id in expired_lots and allocation.entry_id not in expiries
        if spent_before or allocation.lot_id == credit_id:
            gone -= allocation.points
    return max(gone, 0)


def reverse(
    entries: Sequence[LedgerEntry],
    allocations: Sequence[Allocation],
    *,
    purchase: PurchaseRecord,
    refund: RefundRecord,
    points: int,
    policy: RefundPolicy,
    now: datetime,
) -> tuple[LedgerEntry, list[Allocation]]:
    """The reversal of a refund's points and what it drew them from."""
    entry_id = reversal_id(refund)
    drawn: list[Allocation] = []
    wanted = points
    for held, left in _held_back(entries, allocations, purchase):
        if wanted > 0:
            take = min(left, wanted)
            drawn.append(Allocation(entry_id, held, take))
            wanted -= take
    credit = min(wanted, _expired_credit(entries, allocations, purchase, now))
    if credit > 0:
        drawn.append(Allocation(entry_id, expired_credit_id(purchase), credit))
        wanted -= credit
    drawn.extend(
        cover(
            entries,
            allocations,
            entry_id=entry_id,
            points=wanted,
            first_lots=own_lots(purchase),
            now=now,
        )
    )
    taken = points if policy == "unlimited" else sum(a.points for a in drawn)
    entry = LedgerEntry(
        entry_id=entry_id,
        customer_id=purchase.customer_id,
        kind=EntryKind.REVERSE,
        points=-taken,
        reason="refund",
        occurred_at=refund.occurred_at,
        available_at=refund.occurred_at,
        purchase_id=purchase.purchase_id,
    )
    return entry, drawn


def debts(entries: Sequence[LedgerEntry], allocations: Sequence[Allocation]) -> dict[str, int]:
    """What each reversal took beyond the lots that covered it, by entry id."""
    covered: dict[str, int] = {}
    for allocation in allocations:
        covered[allocation.entry_id] = covered.get(allocation.entry_id, 0) + allocation.points
    owed = {
        entry.entry_id: -entry.points - covered.get(entry.entry_id, 0)
        for entry in entries
        if entry.kind is EntryKind.REVERSE
    }
    return {entry_id: points for entry_id, points in owed.items() if points > 0}


def repay_debt(
    entries: Sequence[LedgerEntry], allocations: Sequence[Allocation], now: datetime
) -> list[Allocation]:
    """Lots drawn on to repay the debt, oldest debt first: later earnings repay it before
    they can be spent."""
    repaid: list[Allocation] = []
    for entry_id, owed in debts(entries, allocations).items():
        drawn = cover(
            entries,
            [*allocations, *repaid],
            entry_id=entry_id,
            points=owed,
            first_lots=frozenset(),
            now=now,
        )
        if not drawn:
            break
        repaid.extend(drawn)
    return repaid
