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
from services.points.domain.earning import Earning, Item, PurchaseFacts, purchase_points
from services.points.domain.lots import Allocation
from services.points.domain.model import (
    LedgerEntry,
    Member,
    Program,
    TierAssignment,
    latest_tier,
    purchase_earning,
    referral_bonus,
    welcome_bonus,
)
from services.points.domain.refunds import (
    PurchaseRecord,
    RefundRecord,
    campaign_lot_id,
    points_to_reverse,
    purchase_key,
    repay_debt,
    reversal_id,
    reverse,
)
from services.points.domain.velocity import cap, day_of, next_day
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent, derived_event_id
from shared.messaging.outbox import EventSink, emit

SOURCE = "points"

# customer.updated too: the customers topic is compacted, so a consumer starting afresh may
# find a customer's latest profile only, never the enrolment, and must enrol them from it.
HANDLED_TYPES = frozenset(
    {
        events.CUSTOMER_ENROLLED,
        events.CUSTOMER_UPDATED,
        events.PURCHASE_COMPLETED,
        events.PURCHASE_REFUNDED,
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
    facts_key: str  # the purchase's key among refunds: partner and purchase id
    facts: PurchaseFacts


@dataclass(frozen=True)
class _TierChange:
    cause: CloudEvent
    assignment: TierAssignment


@dataclass(frozen=True)
class _Refund:
    cause: CloudEvent
    refund: RefundRecord


_Step = _Enrolment | _Purchase | _TierChange | _Refund


async def apply_batch(batch: Sequence[CloudEvent], ctx: Context) -> None:
    steps = _read(batch, ctx.program)
    if not steps:
        return
    # 1. Load, asking only what the batch's kinds of event need: a batch of purchases alone
    # (the common case) asks nothing about refunds. The first enrolment of a customer the
    # ledger did not know grants the bonus.
    first_enrolments: dict[str, Member] = {}
    buyers: set[str] = set()
    purchase_keys: set[str] = set()
    refunded_keys: set[str] = set()
    for step in steps:
        if isinstance(step, _Enrolment):
            first_enrolments.setdefault(step.member.customer_id, step.member)
        elif isinstance(step, _Purchase):
            buyers.add(step.customer_id)
            purchase_keys.add(step.facts_key)
        elif isinstance(step, _Refund):
            refunded_keys.add(step.refund.purchase_key)
    ceiling = ctx.program.max_points_per_day
    # The purchases refunded, and, for the velocity guard, whether a purchase is applied
    # again; the refunds kept of the refunded ones (a refund may have come before its
    # purchase: `record_purchases` says which purchases find refunds waiting).
    looked_up = refunded_keys | purchase_keys if ceiling > 0 else refunded_keys
    known_purchases = await ctx.ledger.purchases_of(looked_up) if looked_up else {}
    refunds_of = await ctx.ledger.refunds_of(refunded_keys) if refunded_keys else {}
    new_customers = (
        await ctx.ledger.add_customers(list(first_enrolments.values()))
        if first_enrolments
        else set()
    )
    tiers, referrers = await ctx.ledger.buyers_of(buyers) if buyers else ({}, {})
    zone = ctx.program.zone
    earned_today = (
        await ctx.ledger.earned_on(
            {
                (s.customer_id, start, next_day(start, zone))
                for s in steps
                if isinstance(s, _Purchase)
                for start in (day_of(s.facts.occurred_at, zone),)
            }
        )
        if ceiling > 0
        else {}
    )
    # Every campaign that may apply to one of the batch's purchases, by when they were made.
    purchase_times = [s.facts.occurred_at for s in steps if isinstance(s, _Purchase)]
    campaigns = (
        await ctx.ledger.campaigns_during(min(purchase_times), max(purchase_times))
        if purchase_times
        else []
    )

    # 2. Walk the batch in order.
    grants: list[tuple[LedgerEntry, CloudEvent, str]] = []
    tier_changes: dict[str, TierAssignment] = {}
    new_purchases: dict[str, PurchaseRecord] = {}
    new_refunds: list[RefundRecord] = []
    held: list[LedgerEntry] = []
    # The purchases whose refunds to apply, in order: a refund's always; a purchase's when
    # refunds were kept before this batch (`record_purchases` tells which, after the walk).
    refund_moments: list[tuple[str, bool]] = []  # (purchase key, by a refund)
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
                grants.append((bonus, step.cause, "points-earned"))
        elif isinstance(step, _Refund):
            refund = step.refund
            kept = refunds_of.setdefault(refund.purchase_key, [])
            if all(r.refund_key != refund.refund_key for r in kept):
                kept.append(refund)
                new_refunds.append(refund)
            refund_moments.append((refund.purchase_key, True))
        elif isinstance(step, _Purchase):
            # The tier as of this purchase: a tier change earlier in the batch counts.
            assignment = tiers.get(step.customer_id)
            earning = purchase_points(
                ctx.program,
                step.facts,
                tier=assignment.tier if assignment is not None else None,
                campaigns=campaigns,
            )
            applied_before = step.facts_key in known_purchases or step.facts_key in new_purchases
            for entry, purpose in _lots_of(ctx.program, step, earning):
                if ceiling > 0 and not applied_before:
                    day = (step.customer_id, day_of(step.facts.occurred_at, zone))
                    before = earned_today.get(day, 0)
                    earned_today[day] = before + entry.points
                    granted, kept_back = cap(entry, before, ceiling)
                    if granted is not None:
                        grants.append((granted, step.cause, purpose))
                    if kept_back is not None:
                        held.append(kept_back)
                else:
                    grants.append((entry, step.cause, purpose))
            referrer = referrers.pop(step.customer_id, None)  # the first purchase only
            if referrer is not None:
                referral = referral_bonus(
                    ctx.program,
                    referred=step.customer_id,
                    referrer=referrer,
                    purchased_at=step.facts.occurred_at,
                )
                if referral is not None:
                    grants.append((referral, step.cause, "referral-bonus"))
            if not applied_before:
                record = PurchaseRecord(
                    step.facts_key,
                    step.customer_id,
                    step.purchase_id,
                    step.facts.total,
                    earning.points,
                    step.facts.partner_id,
                )
                new_purchases[step.facts_key] = record
            refund_moments.append((step.facts_key, False))
        else:
            assignment = step.assignment
            customer_id = assignment.customer_id
            tiers[customer_id] = latest_tier(tiers.get(customer_id), assignment)
            tier_changes[customer_id] = latest_tier(tier_changes.get(customer_id), assignment)

    # 3. Write, and announce only what the ledger did not have: a purchase earns once
    # whichever event carried it, in this batch or before it.
    if tier_changes:
        await ctx.ledger.set_tiers(list(tier_changes.values()))
    new_entries = [*(entry for entry, _, _ in grants), *held]
    recorded = await ctx.ledger.record(new_entries) if new_entries else set()
    for entry, cause, purpose in grants:
        if entry.entry_id in recorded:
            recorded.discard(entry.entry_id)
            earned = _points_earned(entry, cause, ctx.now, purpose)
            await ctx.sink.add(earned, key=entry.customer_id, topic=topics.POINTS)
    waited = (
        await ctx.ledger.record_purchases(list(new_purchases.values())) if new_purchases else set()
    )
    if new_refunds:
        await ctx.ledger.add_refunds(new_refunds)

    # 4. Refunds, once their purchase is there, and the debt later earnings repay.
    to_reverse = list(
        dict.fromkeys(key for key, by_refund in refund_moments if by_refund or key in waited)
    )
    # Purchases that found refunds kept before this batch and were not refunded in it: the
    # purchase as first recorded (an earlier delivery may have earned otherwise), and those
    # refunds.
    found_waiting = [key for key in waited if key not in refunded_keys]
    if found_waiting:
        known_purchases.update(await ctx.ledger.purchases_of(found_waiting))
        refunds_of.update(await ctx.ledger.refunds_of(found_waiting))
    for key, record in new_purchases.items():
        known_purchases.setdefault(key, record)
    reversible = [key for key in to_reverse if key in known_purchases]
    grantees = {entry.customer_id for entry, _, _ in grants}
    await _reverse_and_repay(
        ctx,
        [(known_purchases[key], refunds_of[key]) for key in reversible],
        debtors=await ctx.ledger.debtors(grantees) if grantees else set(),
    )


async def _reverse_and_repay(
    ctx: Context,
    refunded: list[tuple[PurchaseRecord, list[RefundRecord]]],
    debtors: set[str],
) -> None:
    customers = {purchase.customer_id for purchase, _ in refunded} | debtors
    if not customers:
        return
    # The API's spends draw on the same lots: they wait for this batch, and it for them.
    await ctx.ledger.lock_customers(customers)
    ledgers, allocations = await ctx.ledger.ledgers_of(customers)
    drawn: list[Allocation] = list(allocations)
    reversals: list[LedgerEntry] = []
    new_allocations: list[tuple[str, Allocation]] = []
    refunds_by_entry: dict[str, RefundRecord] = {}
    for purchase, refunds in refunded:
        entries = ledgers[purchase.customer_id]
        present = {entry.entry_id for entry in entries}
        for refund, points in points_to_reverse(purchase, refunds):
            if reversal_id(refund) in present:
                continue
            entry, taken = reverse(
                entries,
                drawn,
                purchase=purchase,
                refund=refund,
                points=points,
                policy=ctx.program.refund_policy,
                now=ctx.now,
            )
            entries.append(entry)
            drawn.extend(taken)
            reversals.append(entry)
            refunds_by_entry[entry.entry_id] = refund
            new_allocations.extend((purchase.customer_id, a) for a in taken)
    for customer_id in sorted(customers):
        repaid = repay_debt(ledgers[customer_id], drawn, ctx.now)
        drawn.extend(repaid)
        new_allocations.extend((customer_id, a) for a in repaid)
    await ctx.ledger.record(reversals)
    await ctx.ledger.record_allocations(new_allocations)
    for entry in reversals:
        if entry.points < 0:
            refund = refunds_by_entry[entry.entry_id]
            await emit(
                ctx.sink,
                events.PointsReversed(
                    customer_id=entry.customer_id, points=-entry.points, refund_id=refund.refund_id
                ),
                source=SOURCE,
                customer_id=entry.customer_id,
                time=ctx.now,
                cause_id=entry.entry_id,
                purpose="points-reversed",
            )


def _lots_of(program: Program, step: _Purchase, earning: Earning) -> list[tuple[LedgerEntry, str]]:
    """The lots a purchase's earning makes, each with the purpose its points.earned is
    derived for: the purchase's lot, and one for the points of campaigns with a validity of
    their own."""
    lots: list[tuple[LedgerEntry, str]] = []
    if earning.base_points > 0:
        entry = purchase_earning(
            program,
            entry_id=step.entry_id,
            customer_id=step.customer_id,
            purchase_id=step.purchase_id,
            occurred_at=step.facts.occurred_at,
            points=earning.base_points,
            rule_ids=earning.rule_ids,
            expires_at=earning.expires_at,
        )
        lots.append((entry, "points-earned"))
    if earning.campaign_points > 0:
        assert earning.campaign_expires_at is not None
        entry = purchase_earning(
            program,
            entry_id=campaign_lot_id(step.entry_id),
            customer_id=step.customer_id,
            purchase_id=step.purchase_id,
            occurred_at=step.facts.occurred_at,
            points=earning.campaign_points,
            rule_ids=earning.campaign_rule_ids,
            expires_at=earning.campaign_expires_at,
        )
        lots.append((entry, "campaign-points-earned"))
    return lots


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
                    facts_key=purchase_key(purchase.partner_id, purchase.purchase_id),
                    facts=facts,
                )
            )
        elif event.type in (events.CUSTOMER_ENROLLED, events.CUSTOMER_UPDATED):
            # A profile for a customer the ledger does not know yet enrols them (welcome bonus
            # included); for a known one it changes nothing here.
            profile = event.data_as(events.CustomerProfile)
            member = Member(
                profile.customer_id,
                profile.partner_id,
                profile.enrolled_at,
                referred_by=profile.referred_by,
            )
            steps.append(_Enrolment(event, member))
        elif event.type == events.PURCHASE_REFUNDED:
            refunded = event.data_as(events.PurchaseRefunded)
            record = RefundRecord(
                refund_key=f"{refunded.partner_id}:{refunded.refund_id}",
                purchase_key=purchase_key(refunded.partner_id, refunded.purchase_id),
                customer_id=refunded.customer_id,
                refund_id=refunded.refund_id,
                amount=refunded.amount,
                occurred_at=refunded.occurred_at,
            )
            steps.append(_Refund(event, record))
        elif event.type == events.TIER_CHANGED:
            change = event.data_as(events.TierChanged)
            assignment = TierAssignment(change.customer_id, change.to_tier, change.effective_at)
            steps.append(_TierChange(event, assignment))
    return steps


def _points_earned(
    entry: LedgerEntry, cause: CloudEvent, now: datetime, purpose: str
) -> CloudEvent:
    """The points.earned event of a new entry, with an id derived from its cause (a replay
    re-emits it rather than a second one).

    Built from JSON-ready values, without validating a PointsEarned and dumping it again:
    this runs once per purchase, and everything in it comes from an already validated event.
    The unit tests hold it equal to what `shared.messaging.outbox.emit` of the PointsEarned builds.
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
        id=derived_event_id(cause.id, purpose),
        source=events.source_uri(SOURCE),
        type=events.POINTS_EARNED,
        subject=entry.customer_id,
        time=now,
        datacontenttype="application/json",
        dataschema=_POINTS_EARNED_SCHEMA,
        traceparent=None,
        tracestate=None,
        data=data,
    )


_POINTS_EARNED_SCHEMA = events.schema_uri(events.POINTS_EARNED)


def _json_instant(instant: datetime) -> str:
    """An aware UTC instant as pydantic writes it in JSON."""
    return instant.isoformat().replace("+00:00", "Z")
