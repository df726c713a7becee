"""Points as tender: a purchase paid for in part with points, and what its refunds give back.
Pure Python: no framework, no I/O, time passed in.

A purchase may name the redemption (a REDEEM entry, or a HOLD captured at the till) that paid
for part of it. Its refunds give the spent points back in proportion to the amount refunded:
after refunds of `refunded` in all, `floor(spent * refunded / total)` points are accounted
for, and each refund accounts for the difference to what the refunds before it accounted for
(so partial refunds add up exactly, and a full refund accounts for every point spent).

The spent points are queued as the redemption drew them, soonest-expiring lot first; a
refund accounts for the next slice of that queue. Each point of the slice goes back to the
very lot it was drawn from (a release: a negative allocation, as a voided hold's), so it keeps
its original expiry and its issuing partner; a point whose lot has expired by the refund's
processing is not given back (it would have expired anyway), and is not made up for from
another lot. A refund's give-back has an id derived from the refund: it is recorded once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from services.points.domain.lots import Allocation, is_lot
from services.points.domain.model import EntryKind, LedgerEntry
from services.points.domain.refunds import PurchaseRecord, RefundRecord

RETURN_REASON = "refund of points spent"
RETURN_RULE = "tender-refund"
# Why a purchase's redemption was not linked to it (the purchase itself is applied anyway).
UNKNOWN_REDEMPTION = "unknown-redemption"
ANOTHER_CUSTOMERS = "another-customers-redemption"
REWARD_REDEMPTION = "reward-redemption"
REDEMPTION_USED = "redemption-used"
REFUSALS = (UNKNOWN_REDEMPTION, ANOTHER_CUSTOMERS, REWARD_REDEMPTION, REDEMPTION_USED)
# A hold's releases (`holds.settle`, `holds.lapse_all`): a voided or lapsed hold gave its
# points back already, and a purchase naming it has nothing left to give back.
_HOLD_RELEASES = ("void", "lapse")


@dataclass(frozen=True)
class TenderLink:
    """A new purchase naming the redemption that paid for part of it."""

    purchase_key: str
    customer_id: str
    redemption_id: str


def return_id(refund: RefundRecord) -> str:
    return f"tender:{refund.refund_key}"


def spent_by(
    redemption_id: str, entries: Sequence[LedgerEntry], allocations: Sequence[Allocation]
) -> list[tuple[LedgerEntry, int]]:
    """The lots the redemption drew from, with the points it still holds of each (net of a
    hold's void or lapse), in the order it drew them: soonest-expiring first."""
    movements = {redemption_id, *(f"{redemption_id}:{action}" for action in _HOLD_RELEASES)}
    net: dict[str, int] = {}
    for allocation in allocations:
        if allocation.entry_id in movements:
            net[allocation.lot_id] = net.get(allocation.lot_id, 0) + allocation.points
    lots = [entry for entry in entries if is_lot(entry) and net.get(entry.entry_id, 0) > 0]
    # The order the redemption drew them in (`lots.spendable_lots`); a lot without an expiry
    # last.
    lots.sort(
        key=lambda lot: (
            lot.expires_at is None,
            lot.expires_at or lot.available_at,
            lot.available_at,
            lot.entry_id,
        )
    )
    return [(lot, net[lot.entry_id]) for lot in lots]


def slices(
    spent: int, total: Decimal, refunds: Sequence[RefundRecord]
) -> list[tuple[RefundRecord, int, int]]:
    """Each refund, in the order they came, with the slice [start, end) of the spent points
    it accounts for: `end` is `floor(spent * refunded so far / total)`."""
    due: list[tuple[RefundRecord, int, int]] = []
    refunded = Decimal(0)
    before = 0
    for refund in refunds:
        # Refunds beyond the purchase's total give back nothing beyond every point spent.
        refunded = min(refunded + refund.amount, total)
        so_far = int(spent * refunded // total) if total > 0 else 0
        due.append((refund, before, so_far))
        before = so_far
    return due


def give_back(
    queue: Sequence[tuple[LedgerEntry, int]],
    *,
    purchase: PurchaseRecord,
    refund: RefundRecord,
    start: int,
    end: int,
    partner_id: str | None,
    store_id: str | None,
    now: datetime,
) -> tuple[LedgerEntry, list[Allocation]] | None:
    """The release giving back slice [start, end) of the queue to the lots it came from,
    those not expired at `now`; None when nothing is given back. The release names the
    partner (and store) that honoured the redemption: the settlement nets it against the
    spend."""
    entry_id = return_id(refund)
    given: list[Allocation] = []
    position = 0
    for lot, points in queue:
        low, high = max(start, position), min(end, position + points)
        position += points
        if high <= low or (lot.expires_at is not None and lot.expires_at <= now):
            continue
        given.append(Allocation(entry_id, lot.entry_id, -(high - low)))
    if not given:
        return None
    entry = LedgerEntry(
        entry_id=entry_id,
        customer_id=purchase.customer_id,
        kind=EntryKind.RELEASE,
        points=-sum(a.points for a in given),
        reason=RETURN_REASON,
        occurred_at=refund.occurred_at,
        available_at=refund.occurred_at,
        purchase_id=purchase.purchase_id,
        rule_ids=(RETURN_RULE,),
        partner_id=partner_id,
        store_id=store_id,
    )
    return entry, given


def returns(
    entries: Sequence[LedgerEntry],
    allocations: Sequence[Allocation],
    *,
    purchase: PurchaseRecord,
    refunds: Sequence[RefundRecord],
    now: datetime,
) -> list[tuple[RefundRecord, LedgerEntry, list[Allocation]]]:
    """What the refunds of a purchase paid with points give back and have not given back
    before (their releases are not in `entries`): nothing for a purchase without a
    redemption, or one whose redemption is not in the customer's ledger."""
    redemption_id = purchase.redemption_id
    if redemption_id is None:
        return []
    spend = next((e for e in entries if e.entry_id == redemption_id), None)
    if spend is None or spend.kind not in (EntryKind.REDEEM, EntryKind.HOLD):
        return []
    queue = spent_by(redemption_id, entries, allocations)
    present = {entry.entry_id for entry in entries}
    done: list[tuple[RefundRecord, LedgerEntry, list[Allocation]]] = []
    spent = sum(points for _, points in queue)
    for refund, start, end in slices(spent, purchase.total, refunds):
        if return_id(refund) in present:
            continue
        given = give_back(
            queue,
            purchase=purchase,
            refund=refund,
            start=start,
            end=end,
            partner_id=spend.partner_id,
            store_id=spend.store_id,
            now=now,
        )
        if given is not None:
            done.append((refund, *given))
    return done
