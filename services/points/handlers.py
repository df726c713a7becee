"""What points does with a batch of the events it consumes: plain functions, side effects
injected.

A batch is applied in three steps: the state it needs is loaded for all its customers at
once, the events are walked in order applying the rules in memory (so a customer's purchase
sees the tier an earlier event of the same batch gave them), and what it caused is written
with a few multi-row statements, announcing only the entries the ledger did not have. The
result is the same as applying the events one at a time, and a batch (or any part of it)
applied again changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.points.adapters.repository import LedgerRepository
from services.points.domain.earning import Item, PurchaseFacts, purchase_points
from services.points.domain.model import (
    LedgerEntry,
    Member,
    Program,
    TierAssignment,
    latest_tier,
    purchase_earning,
    welcome_bonus,
)
from shared import events, topics
from shared.events import CloudEvent, derived_event_id
from shared.outbox import EventSink

SOURCE = "points"

# customer.updated too: the customers topic is compacted, so a consumer starting afresh may
# find a customer's latest profile only, never the enrolment, and must enrol them from it.
HANDLED_TYPES = frozenset(
    {
        events.CUSTOMER_ENROLLED,
        events.CUSTOMER_UPDATED,
        events.PURCHASE_COMPLETED,
        events.TIER_CHANGED,
    }
)


@dataclass(frozen=True)
class Context:
    ledger: LedgerRepository
    sink: EventSink
    program: Program
    now: datetime


@dataclass(frozen=True)
class _Enrolment:
    cause: CloudEvent
    member: Member


@dataclass(frozen=True)
class _Purchase:
    cause: CloudEvent
    entry_id: str
    customer_id: str
    purchase_id: str
    facts: PurchaseFacts


@dataclass(frozen=True)
class _TierChange:
    cause: CloudEvent
    assignment: TierAssignment


_Step = _Enrolment | _Purchase | _TierChange


async def apply_batch(batch: Sequence[CloudEvent], ctx: Context) -> None:
    steps = _read(batch, ctx.program)
    if not steps:
        return
    # 1. Load. The first enrolment of a customer the ledger did not know grants the bonus.
    first_enrolments: dict[str, Member] = {}
    buyers: set[str] = set()
    for step in steps:
        if isinstance(step, _Enrolment):
            first_enrolments.setdefault(step.member.customer_id, step.member)
        elif isinstance(step, _Purchase):
            buyers.add(step.customer_id)
    new_customers = await ctx.ledger.add_customers(list(first_enrolments.values()))
    tiers = await ctx.ledger.tiers_of(buyers)
    # Every campaign that may apply to one of the batch's purchases, by when they were made.
    purchase_times = [s.facts.occurred_at for s in steps if isinstance(s, _Purchase)]
    campaigns = (
        await ctx.ledger.campaigns_during(min(purchase_times), max(purchase_times))
        if purchase_times
        else []
    )

    # 2. Walk the batch in order.
    grants: list[tuple[LedgerEntry, CloudEvent]] = []
    tier_changes: dict[str, TierAssignment] = {}
    for step in steps:
        if isinstance(step, _Enrolment):
            customer_id = step.member.customer_id
            if customer_id not in new_customers:
                continue
            new_customers.discard(customer_id)  # a second enrolment in the batch grants nothing
            bonus = welcome_bonus(
                ctx.program,
                entry_id=derived_event_id(step.cause.id, "welcome-bonus"),
                customer_id=customer_id,
                enrolled_at=step.member.enrolled_at,
            )
            if bonus.points > 0:
                grants.append((bonus, step.cause))
        elif isinstance(step, _Purchase):
            # The tier as of this purchase: a tier change earlier in the batch counts.
            assignment = tiers.get(step.customer_id)
            earning = purchase_points(
                ctx.program,
                step.facts,
                tier=assignment.tier if assignment is not None else None,
                campaigns=campaigns,
            )
            if earning.points > 0:
                entry = purchase_earning(
                    ctx.program,
                    entry_id=step.entry_id,
                    customer_id=step.customer_id,
                    purchase_id=step.purchase_id,
                    occurred_at=step.facts.occurred_at,
                    points=earning.points,
                    rule_ids=earning.rule_ids,
                    expires_at=earning.expires_at,
                )
                grants.append((entry, step.cause))
        else:
            assignment = step.assignment
            customer_id = assignment.customer_id
            tiers[customer_id] = latest_tier(tiers.get(customer_id), assignment)
            tier_changes[customer_id] = latest_tier(tier_changes.get(customer_id), assignment)

    # 3. Write, and announce only what the ledger did not have: a purchase earns once
    # whichever event carried it, in this batch or before it.
    await ctx.ledger.set_tiers(list(tier_changes.values()))
    recorded = await ctx.ledger.record([entry for entry, _ in grants])
    for entry, cause in grants:
        if entry.entry_id in recorded:
            recorded.discard(entry.entry_id)
            earned = _points_earned(entry, cause, ctx.now)
            await ctx.sink.add(earned, key=entry.customer_id, topic=topics.POINTS)


def _read(batch: Sequence[CloudEvent], program: Program) -> list[_Step]:
    """The batch's events as the steps they are for points; a purchase in a currency other
    than the program's is refused (the consumer sets that event alone aside)."""
    steps: list[_Step] = []
    for event in batch:
        if event.type == events.PURCHASE_COMPLETED:
            purchase = event.data_as(events.PurchaseCompleted)
            if purchase.currency != program.currency:
                raise ValueError(
                    f"purchase {purchase.purchase_id} is in {purchase.currency}, "
                    f"the program in {program.currency}"
                )
            facts = PurchaseFacts(
                partner_id=purchase.partner_id,
                store_id=purchase.store_id,
                occurred_at=purchase.occurred_at,
                total=purchase.total,
                items=[
                    Item(item.category, item.quantity, item.unit_price)
                    for item in purchase.items or ()
                ],
            )
            steps.append(
                _Purchase(
                    event,
                    # Keyed by the purchase, not the event: one purchase earns once whatever
                    # carried it.
                    entry_id=f"purchase:{purchase.partner_id}:{purchase.purchase_id}",
                    customer_id=purchase.customer_id,
                    purchase_id=purchase.purchase_id,
                    facts=facts,
                )
            )
        elif event.type in (events.CUSTOMER_ENROLLED, events.CUSTOMER_UPDATED):
            # A profile for a customer the ledger does not know yet enrols them (welcome bonus
            # included); for a known one it changes nothing here.
            profile = event.data_as(events.CustomerProfile)
            member = Member(profile.customer_id, profile.partner_id, profile.enrolled_at)
            steps.append(_Enrolment(event, member))
        elif event.type == events.TIER_CHANGED:
            change = event.data_as(events.TierChanged)
            assignment = TierAssignment(change.customer_id, change.to_tier, change.effective_at)
            steps.append(_TierChange(event, assignment))
    return steps


def _points_earned(entry: LedgerEntry, cause: CloudEvent, now: datetime) -> CloudEvent:
    """The points.earned event of a new entry, with an id derived from its cause (a replay
    re-emits it rather than a second one).

    Built from JSON-ready values, without validating a PointsEarned and dumping it again:
    this runs once per purchase, and everything in it comes from an already validated event.
    The unit tests hold it equal to what `shared.outbox.emit` of the PointsEarned builds.
    """
    assert entry.expires_at is not None
    data: dict[str, Any] = {
        "customer_id": entry.customer_id,
        "points": entry.points,
        "purchase_id": entry.purchase_id,
        "reason": entry.reason,
        "rule_ids": list(entry.rule_ids),
        "available_at": _json_instant(entry.available_at),
        "expires_at": _json_instant(entry.expires_at),
    }
    # Every field given, defaults too: resolving them costs model_construct half its time.
    return CloudEvent.model_construct(
        specversion="1.0",
        id=derived_event_id(cause.id, "points-earned"),
        source=SOURCE,
        type=events.POINTS_EARNED,
        subject=entry.customer_id,
        time=now,
        datacontenttype="application/json",
        data=data,
    )


def _json_instant(instant: datetime) -> str:
    """An aware UTC instant as pydantic writes it in JSON."""
    return instant.isoformat().replace("+00:00", "Z")
