"""Lots and what draws on them. Pure Python: no framework, no I/O, time passed in.

Every earning is a lot. Every movement that takes points (a redemption, a hold, an expiry)
records, as allocations, which lots it drew from and how much; a hold given back records
negative allocations to the very lots it drew from. What is left of a lot is its points less
everything allocated against it, so balances are derived from the ledger, never counted.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.points.domain.model import (
    LOT_KINDS,
    Balance,
    EntryKind,
    Expiry,
    LedgerEntry,
)

NEXT_EXPIRIES_SHOWN = 3


@dataclass(frozen=True)
class Allocation:
    """`points` of lot `lot_id` taken by movement `entry_id` (negative: given back)."""

    entry_id: str
    lot_id: str
    points: int


class NotEnoughPoints(Exception):
    def __init__(self, wanted: int, available: int) -> None:
        super().__init__(f"{wanted} points wanted, {available} available")
        self.wanted = wanted
        self.available = available


def is_lot(entry: LedgerEntry) -> bool:
    return entry.kind in LOT_KINDS and entry.points > 0


def remaining_of_lots(
    entries: Iterable[LedgerEntry], allocations: Iterable[Allocation]
) -> dict[str, int]:
    """What is left of each lot, by lot id."""
    remaining = {entry.entry_id: entry.points for entry in entries if is_lot(entry)}
    for allocation in allocations:
        if allocation.lot_id in remaining:
            remaining[allocation.lot_id] -= allocation.points
    return remaining


def _spend_order(lot: LedgerEntry) -> tuple[datetime, datetime, str]:
    assert lot.expires_at is not None
    return (lot.expires_at, lot.available_at, lot.entry_id)


def spendable_lots(
    entries: Sequence[LedgerEntry], allocations: Iterable[Allocation], now: datetime
) -> list[tuple[LedgerEntry, int]]:
    """The lots with points left that can be spent at `now`, soonest-expiring first."""
    remaining = remaining_of_lots(entries, allocations)
    lots = [
        entry
        for entry in entries
        if is_lot(entry)
        and remaining[entry.entry_id] > 0
        and entry.available_at <= now
        and (entry.expires_at is None or entry.expires_at > now)
    ]
    lots.sort(
        key=lambda lot: (
            lot.expires_at or datetime.max.replace(tzinfo=now.tzinfo),
            lot.available_at,
            lot.entry_id,
        )
    )
    return [(lot, remaining[lot.entry_id]) for lot in lots]


def draw(
    entries: Sequence[LedgerEntry],
    allocations: Iterable[Allocation],
    *,
    entry_id: str,
    points: int,
    now: datetime,
) -> list[Allocation]:
    """The allocations of a movement taking `points`, soonest-expiring lots first; refused
    whole when fewer are available (nothing is ever drawn below zero)."""
    if points <= 0:
        raise ValueError("a movement draws a positive number of points")
    lots = spendable_lots(entries, allocations, now)
    available = sum(left for _, left in lots)
    if available < points:
        raise NotEnoughPoints(points, available)
    drawn: list[Allocation] = []
    wanted = points
    for lot, left in lots:
        take = min(left, wanted)
        drawn.append(Allocation(entry_id, lot.entry_id, take))
        wanted -= take
        if wanted == 0:
            break
    return drawn


def spend(
    entries: Sequence[LedgerEntry],
    allocations: Iterable[Allocation],
    *,
    kind: EntryKind,
    entry_id: str,
    customer_id: str,
    points: int,
    reason: str,
    now: datetime,
) -> tuple[LedgerEntry, list[Allocation]]:
    """A redemption or a hold: the negative entry and the lots it drew from."""
    if kind not in (EntryKind.REDEEM, EntryKind.HOLD):
        raise ValueError(f"{kind} is not a spend")
    drawn = draw(entries, allocations, entry_id=entry_id, points=points, now=now)
    entry = LedgerEntry(
        entry_id=entry_id,
        customer_id=customer_id,
        kind=kind,
        points=-points,
        reason=reason,
        occurred_at=now,
        available_at=now,
    )
    return entry, drawn


def release(
    hold_entry_id: str,
    customer_id: str,
    allocations: Iterable[Allocation],
    *,
    entry_id: str,
    reason: str,
    now: datetime,
) -> tuple[LedgerEntry, list[Allocation]]:
    """A hold's points back in the lots it drew from (an expired one is then expired again)."""
    given_back = [
        Allocation(entry_id, a.lot_id, -a.points)
        for a in allocations
        if a.entry_id == hold_entry_id
    ]
    entry = LedgerEntry(
        entry_id=entry_id,
        customer_id=customer_id,
        kind=EntryKind.RELEASE,
        points=-sum(a.points for a in given_back),
        reason=reason,
        occurred_at=now,
        available_at=now,
    )
    return entry, given_back


def expire(
    entries: Sequence[LedgerEntry], allocations: Sequence[Allocation], now: datetime
) -> list[tuple[LedgerEntry, list[Allocation]]]:
    """An expiry for what is left of every lot expired by `now`. Its id counts the lot's
    earlier expiries, so the same state expires the same way and an expired lot nothing was
    given back to is never expired twice."""
    remaining = remaining_of_lots(entries, allocations)
    expiry_ids = {e.entry_id for e in entries if e.kind is EntryKind.EXPIRE}
    expiries: list[tuple[LedgerEntry, list[Allocation]]] = []
    for lot in entries:
        if not is_lot(lot) or lot.expires_at is None or lot.expires_at > now:
            continue
        left = remaining[lot.entry_id]
        if left <= 0:
            continue
        earlier = sum(
            1 for a in allocations if a.lot_id == lot.entry_id and a.entry_id in expiry_ids
        )
        entry_id = f"expiry:{lot.entry_id}:{earlier}"
        entry = LedgerEntry(
            entry_id=entry_id,
            customer_id=lot.customer_id,
            kind=EntryKind.EXPIRE,
            points=-left,
            reason="expired",
            occurred_at=max(lot.expires_at, now) if earlier else lot.expires_at,
            available_at=lot.expires_at,
        )
        expiries.append((entry, [Allocation(entry_id, lot.entry_id, left)]))
    return expiries


def lots_to_warn(
    entries: Sequence[LedgerEntry],
    allocations: Iterable[Allocation],
    warned: Collection[str],
    as_of: datetime,
    ahead: timedelta,
) -> list[tuple[LedgerEntry, int]]:
    """The lots, with what is left of them, that expire within `ahead` of `as_of` and were
    not warned of yet: a lot is warned once, of the points it still holds."""
    remaining = remaining_of_lots(entries, allocations)
    return [
        (lot, remaining[lot.entry_id])
        for lot in entries
        if is_lot(lot)
        and lot.expires_at is not None
        and as_of < lot.expires_at <= as_of + ahead
        and remaining[lot.entry_id] > 0
        and lot.entry_id not in warned
    ]


def balance_of(
    customer_id: str,
    entries: Sequence[LedgerEntry],
    now: datetime,
    allocations: Sequence[Allocation] = (),
) -> Balance:
    """Derived from the ledger every time: there is no counter that could drift from it.

    A lot past its expiry counts for nothing even before the expiry job has recorded it.
    Debt is what negative movements took beyond the lots they drew from."""
    remaining = remaining_of_lots(entries, allocations)
    covered: dict[str, int] = {}
    for allocation in allocations:
        covered[allocation.entry_id] = covered.get(allocation.entry_id, 0) + allocation.points
    available = pending = lifetime = debt = 0
    expiries: dict[datetime, int] = {}
    for entry in entries:
        if entry.kind is EntryKind.HELD:
            continue  # not the customer's until staff release it
        if not is_lot(entry):
            debt += -entry.points - covered.get(entry.entry_id, 0)
            continue
        lifetime += entry.points
        left = remaining[entry.entry_id]
        if entry.expires_at is not None and entry.expires_at <= now:
            continue
        if entry.available_at > now:
            pending += left
            continue
        available += left
        if entry.expires_at is not None and left > 0:
            expiries[entry.expires_at] = expiries.get(entry.expires_at, 0) + left
    return Balance(
        customer_id=customer_id,
        available=available,
        pending=pending,
        debt=max(debt, 0),
        lifetime_earned=lifetime,
        next_expiries=[
            Expiry(points, at) for at, points in sorted(expiries.items())[:NEXT_EXPIRIES_SHOWN]
        ],
    )
