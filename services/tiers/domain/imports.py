"""An imported member's opening tier (product §11, `fedelta.points.imported.v1`): the tier the
program they come from gave them, held from its `since`, and from then on reviewed like any
tier. Pure: no I/O, time passed in.

The import is kept as a qualifying activity of its own (amount 0, `tier` set, dated at the
tier's `since`), so that it counts once however often it is delivered, and a replay rebuilds
it with the rest of the member's history."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from services.tiers.domain.model import (
    CustomerTier,
    Direction,
    Program,
    QualifyingActivity,
    TierChange,
)

# The reason of the tier change an import makes.
IMPORT = "import"


def import_activity_id(customer_id: str) -> str:
    # One import per member, like its event (whose id is derived from the member's).
    return f"import:{customer_id}"


def imported_activity(
    program: Program,
    customer_id: str,
    *,
    tier: str | None,
    tier_since: datetime | None,
    imported_at: datetime,
) -> QualifyingActivity | None:
    """What tiers keeps of an import: its tier, held from `tier_since` (from `imported_at`
    when it names no `since`, or one after the import). None when it names no tier or the
    entry tier: that changes nothing. A tier the program does not have is refused
    (ValueError: the consumer sets that event alone aside)."""
    if tier is None:
        return None
    if tier not in _names(program):
        raise ValueError(f"the import names tier {tier!r}, which the program does not have")
    if tier == program.entry_tier.name:
        return None
    held_from = imported_at if tier_since is None else min(tier_since, imported_at)
    return QualifyingActivity(
        activity_id=import_activity_id(customer_id),
        customer_id=customer_id,
        amount=Decimal(0),
        occurred_at=held_from,
        tier=tier,
    )


def imported_change(
    program: Program, customer: CustomerTier, activity: QualifyingActivity
) -> TierChange | None:
    """The change an import makes: up to its tier, effective at its `since` and reviewed a
    review period after it, as for any tier reached then. Nothing when the customer's tier
    is already as high (an import never lowers a tier), nor for a tier the program does not
    have (a replay under a program that dropped it)."""
    tier = activity.tier
    if tier is None or tier not in _names(program):
        return None
    if program.rank(tier) <= program.rank(customer.tier):
        return None
    return TierChange(
        customer_id=customer.customer_id,
        from_tier=customer.tier,
        to_tier=tier,
        direction=Direction.UP,
        reason=IMPORT,
        effective_at=activity.occurred_at,
        review_at=program.review_at(activity.occurred_at),
    )


def _names(program: Program) -> set[str]:
    return {tier.name for tier in program.tiers}
