"""Refunds: the points of a purchase taken back in proportion to what was refunded. Pure
Python: no framework, no I/O, time passed in.

The points reversed for a purchase in total are `floor(points * refunded so far / total)`,
and each refund reverses the difference to what the refunds before it reversed, so partial
refunds that add up to the whole reverse every point the purchase earned, and never more.
A reversal draws first on what is left of the purchase's own lot (pending or not), then on
the customer's other lots, soonest-expiring first. Under the `unlimited` policy what no lot
covers is debt, which later earnings repay before anything else ("buy, refund, keep the
points" is impossible); under `within_balance` the reversal stops at what the lots hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from services.points.domain.lots import Allocation, is_lot, remaining_of_lots
from services.points.domain.model import EntryKind, LedgerEntry, RefundPolicy


@dataclass(frozen=True)
class PurchaseRecord:
    """What a refund needs to know of the purchase it refunds."""

    purchase_key: str  # partner and purchase id: purchase ids are unique per partner only
    customer_id: str
    purchase_id: str
    total: Decimal
    points: int  # what the purchase earned (0: it earned nothing, nothing to reverse)
    partner_id: str  # the partner that reported it, which owes its points in the liability


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


def _cover(
    entries: Sequence[LedgerEntry],
    allocations: Sequence[Allocation],
    *,
    entry_id: str,
    points: int,
    first_lot: str | None,
    now: datetime,
) -> list[Allocation]:
    """Up to `points` from what is left of the lots: `first_lot` first, then every lot not
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
            lot.entry_id != first_lot,
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
    """The reversal of a refund's points and the lots it drew from."""
    entry_id = reversal_id(refund)
    drawn = _cover(
        entries,
        allocations,
        entry_id=entry_id,
        points=points,
        first_lot=lot_of(purchase),
        now=now,
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
        drawn = _cover(
            entries,
            [*allocations, *repaid],
            entry_id=entry_id,
            points=owed,
            first_lot=None,
            now=now,
        )
        if not drawn:
            break
        repaid.extend(drawn)
    return repaid
