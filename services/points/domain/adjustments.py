"""Staff adjustments and surprise rewards. Pure Python: no framework, no I/O, time passed in.

A positive adjustment is a lot like any earning (it expires, and repays debt first); a
negative one draws on the available lots, soonest-expiring first, and is refused whole when
they hold too few points, as a redemption is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.points.domain.lots import Allocation, draw
from services.points.domain.model import EntryKind, LedgerEntry, Program
from services.points.domain.refunds import repay_debt


def adjust(
    program: Program,
    entries: Sequence[LedgerEntry],
    allocations: Sequence[Allocation],
    *,
    entry_id: str,
    customer_id: str,
    points: int,
    reason: str,
    now: datetime,
) -> tuple[LedgerEntry, list[Allocation]]:
    """The adjustment's entry and the allocations it makes (raises NotEnoughPoints)."""
    if points == 0:
        raise ValueError("an adjustment moves some points")
    entry = LedgerEntry(
        entry_id=entry_id,
        customer_id=customer_id,
        kind=EntryKind.ADJUST,
        points=points,
        reason=reason,
        occurred_at=now,
        available_at=now,
        expires_at=program.expiry_for(now) if points > 0 else None,
        rule_ids=("adjustment",),
    )
    if points < 0:
        return entry, draw(entries, allocations, entry_id=entry_id, points=-points, now=now)
    return entry, repay_debt([*entries, entry], allocations, now)
