"""Referrals pay only for a purchase that was kept (issue 19). Pure Python: no framework, no
I/O, time passed in.

The referrer's bonus (`model.referral_bonus`) is granted for the referred member's first
purchase of at least `referral_min_purchase`, the qualifying purchase, which the bonus names
(its partner and purchase id). It is a lot pending for the program's return window
(`pending_days`), like the purchase's own points, so it cannot be spent before the window
ends. Refunds of the qualifying purchase made within the window (before the bonus became
available) that leave less than the minimum kept, or nothing, take the whole bonus back: one
reversal per referred member (its id is theirs), drawn from the bonus's own lot first. A
refund after the window, or one that leaves at least the minimum kept, takes nothing. A
bonus taken back is never granted again: the referral was spent on that purchase.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from services.points.domain.lots import Allocation
from services.points.domain.model import EntryKind, LedgerEntry, RefundPolicy
from services.points.domain.refunds import PurchaseRecord, RefundRecord, cover

REFERRAL_PREFIX = "referral:"


def referral_id(referred: str) -> str:
    """The id of the bonus the referrer of `referred` gets: one per referred member."""
    return f"{REFERRAL_PREFIX}{referred}"


def referral_reversal_id(referred: str) -> str:
    return f"referral-reversed:{referred}"


def qualifies(referral: LedgerEntry, purchase: PurchaseRecord) -> bool:
    """Whether `purchase` is the one the referral bonus was granted for."""
    return (
        referral.entry_id == referral_id(purchase.customer_id)
        and referral.purchase_id == purchase.purchase_id
        and referral.partner_id == purchase.partner_id
    )


def refund_taking_it_back(
    referral: LedgerEntry,
    purchase: PurchaseRecord,
    refunds: Sequence[RefundRecord],
    minimum: Decimal,
) -> RefundRecord | None:
    """The refund (of those of the qualifying purchase, in the order they came) after which
    the refunds made within the return window leave less than `minimum` kept, or nothing;
    None: the bonus stays."""
    if not qualifies(referral, purchase):
        return None
    refunded = Decimal(0)
    for refund in refunds:
        if refund.occurred_at >= referral.available_at:
            continue  # after the return window: the purchase was kept
        refunded += refund.amount
        kept = purchase.total - refunded
        if kept <= 0 or kept < minimum:
            return refund
    return None


def take_back(
    entries: Sequence[LedgerEntry],
    allocations: Sequence[Allocation],
    *,
    referral: LedgerEntry,
    refund: RefundRecord,
    policy: RefundPolicy,
    now: datetime,
) -> tuple[LedgerEntry, list[Allocation]]:
    """The reversal of the referrer's bonus (`entries` are the referrer's) and what it drew
    from: the bonus's own lot first, then the referrer's other lots as a refund would; under
    `unlimited` what none covers is debt, under `within_balance` it stops at what they
    cover."""
    entry_id = referral_reversal_id(refund.customer_id)
    drawn = cover(
        entries,
        allocations,
        entry_id=entry_id,
        points=referral.points,
        first_lots=frozenset({referral.entry_id}),
        now=now,
    )
    taken = referral.points if policy == "unlimited" else sum(a.points for a in drawn)
    entry = LedgerEntry(
        entry_id=entry_id,
        customer_id=referral.customer_id,
        kind=EntryKind.REVERSE,
        points=-taken,
        reason="referral refunded",
        occurred_at=refund.occurred_at,
        available_at=refund.occurred_at,
        purchase_id=referral.purchase_id,
    )
    return entry, drawn
