"""A customer's tier rebuilt from their whole qualifying history under a program: what the
live service would hold had every purchase, refund and review happened on time under that
program. The replay after a rule change is made of this. Pure: no I/O, time passed in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from services.tiers.domain.imports import imported_change
from services.tiers.domain.model import (
    CustomerTier,
    Direction,
    Program,
    QualifyingActivity,
    SpendHistory,
    TierChange,
    after_change,
    new_customer,
    review_due,
    takes_visit_back,
)

# The reason of a tier change a replay switch announces: the program changed, not the spend.
PROGRAM_CHANGE = "program_change"


@dataclass(frozen=True)
class Rebuilt:
    customer: CustomerTier
    changes: tuple[TierChange, ...]  # every upgrade and review downgrade, in order


def attribute_refunds(
    activities: Iterable[QualifyingActivity], refunded: Mapping[str, str]
) -> list[QualifyingActivity]:
    """Each refund (its activity id a key of `refunded`, mapped to its purchase's) dated to
    its purchase's instant when the purchase is among the activities, like the live handler
    does; each purchase a visit, taken back by the refund (in the order they occurred) that
    refunds it wholly; referrals as they are."""
    listed = list(activities)
    bought = {
        a.activity_id: a
        for a in listed
        if a.activity_id not in refunded and a.activity_id.startswith("purchase:")
    }
    taken_back: set[str] = set()
    so_far: dict[str, Decimal] = {}
    for a in sorted(listed, key=lambda a: (a.occurred_at, a.activity_id)):
        purchase = bought.get(refunded.get(a.activity_id, ""))
        if purchase is None:
            continue
        before = so_far.get(purchase.activity_id, Decimal(0))
        if takes_visit_back(purchase.amount, before, -a.amount):
            taken_back.add(a.activity_id)
        so_far[purchase.activity_id] = before - a.amount
    attributed: list[QualifyingActivity] = []
    for a in listed:
        if a.activity_id in refunded:
            purchase = bought.get(refunded[a.activity_id])
            a = replace(
                a,
                attributed_at=purchase.occurred_at if purchase else None,
                refund_of=refunded[a.activity_id],
                visits=-1 if a.activity_id in taken_back else 0,
            )
        elif a.activity_id in bought:
            a = replace(a, visits=1)
        attributed.append(a)
    return attributed


def rebuild_customer(
    program: Program,
    customer_id: str,
    *,
    enrolled_at: datetime | None,
    activities: Iterable[QualifyingActivity],
    refunds: Iterable[str],
    as_of: datetime,
) -> Rebuilt | None:
    """The customer's tier as of `as_of`: activity applied in the order it occurred, each
    review judged when it falls due (before activity at or after its date), and every review
    due by `as_of` made. `refunds` names the activities that are refunds: they lower the
    spend but never the tier by themselves. An import (an activity with a `tier`) raises the
    tier to its own from its instant on. None for a customer who neither enrolled, bought
    nor was imported with a tier: the live service does not know them either.

    Arrival order plays no part: the result depends only on the history and the program."""
    refund_ids = set(refunds)
    ordered = sorted(activities, key=lambda a: (a.occurred_at, a.activity_id))
    purchases = [
        a for a in ordered if a.activity_id not in refund_ids and not a.referrals and a.tier is None
    ]
    starts = [moment for moment in (enrolled_at,) if moment is not None]
    starts.extend(a.occurred_at for a in purchases[:1])
    if not starts:
        # Known by their import alone (their enrolment not read yet): from its instant.
        entry = new_customer(program, customer_id, since=as_of)
        starts.extend(a.occurred_at for a in ordered if imported_change(program, entry, a))
    if not starts:
        return None
    customer = new_customer(program, customer_id, since=min(starts), enrolled_at=enrolled_at)
    history = SpendHistory(program)
    changes: list[TierChange] = []
    for activity in ordered:
        if customer.review_at <= activity.occurred_at:
            reviewed = review_due(program, customer, ordered, activity.occurred_at)
            customer = reviewed.customer
            changes.extend(reviewed.changes)
        history.record(activity)
        if activity.activity_id in refund_ids:
            continue
        if activity.tier is not None:
            change = imported_change(program, customer, activity)
        else:
            change = history.upgrade_for(customer, arrived_at=activity.occurred_at)
        if change is not None:
            customer = after_change(customer, change)
            changes.append(change)
    reviewed = review_due(program, customer, ordered, as_of)
    return Rebuilt(reviewed.customer, (*changes, *reviewed.changes))


def switch_change(
    program: Program, old_tier: str, rebuilt: CustomerTier, at: datetime
) -> TierChange | None:
    """What a replay switch announces for a customer: a change only when the rebuilt tier
    differs from the one they hold (a new date alone is not a tier change)."""
    if old_tier == rebuilt.tier:
        return None
    known = [tier.name for tier in program.tiers]
    # A tier the new program dropped ranks above all its tiers: the way off it is down.
    old_rank = known.index(old_tier) if old_tier in known else len(known)
    up = program.rank(rebuilt.tier) > old_rank
    return TierChange(
        customer_id=rebuilt.customer_id,
        from_tier=old_tier,
        to_tier=rebuilt.tier,
        direction=Direction.UP if up else Direction.DOWN,
        reason=PROGRAM_CHANGE,
        effective_at=at,
        review_at=rebuilt.review_at,
    )
