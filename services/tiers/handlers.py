"""What tiers does with each event it consumes: plain functions, side effects injected."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from services.tiers.adapters.repository import TierRepository
from services.tiers.domain.model import (
    Program,
    QualifyingActivity,
    TierChange,
    new_customer,
    purchase_activity_id,
    refund_activity_id,
    upgrade_for,
)
from shared import events
from shared.events import CloudEvent
from shared.outbox import EventSink, emit

SOURCE = "tiers"


@dataclass(frozen=True)
class Context:
    tiers: TierRepository
    sink: EventSink
    program: Program
    now: datetime


async def customer_enrolled(cause: CloudEvent, ctx: Context) -> None:
    enrolled = events.CustomerEnrolled.model_validate(cause.data)
    await ctx.tiers.enrol(
        new_customer(
            ctx.program,
            enrolled.customer_id,
            since=enrolled.enrolled_at,
            enrolled_at=enrolled.enrolled_at,
        )
    )


async def purchase_completed(cause: CloudEvent, ctx: Context) -> None:
    purchase = events.PurchaseCompleted.model_validate(cause.data)
    if purchase.currency != ctx.program.currency:
        raise ValueError(
            f"purchase {purchase.purchase_id} is in {purchase.currency}, "
            f"the program in {ctx.program.currency}"
        )
    # The enrolment travels on another topic and may not be here yet.
    await ctx.tiers.add_customer(
        new_customer(ctx.program, purchase.customer_id, since=purchase.occurred_at)
    )
    customer = await ctx.tiers.lock_customer(purchase.customer_id)
    assert customer is not None, "the customer row was ensured in this transaction"
    activity = QualifyingActivity(
        activity_id=purchase_activity_id(purchase.partner_id, purchase.purchase_id),
        customer_id=purchase.customer_id,
        amount=purchase.total,
        occurred_at=purchase.occurred_at,
    )
    if not await ctx.tiers.record_activity(activity):
        return  # this purchase already counted, under another event id
    activities = await ctx.tiers.activities(
        purchase.customer_id, since=ctx.program.earliest_counted(purchase.occurred_at)
    )
    change = upgrade_for(ctx.program, customer, activities, arrived_at=purchase.occurred_at)
    if change is not None:
        await ctx.tiers.apply_change(change)
        await _announce(change, cause, ctx)


async def purchase_refunded(cause: CloudEvent, ctx: Context) -> None:
    refund = events.PurchaseRefunded.model_validate(cause.data)
    # Recorded only: a refund lowers qualifying spend, but a tier is lowered at review alone.
    await ctx.tiers.record_activity(
        QualifyingActivity(
            activity_id=refund_activity_id(refund.partner_id, refund.refund_id),
            customer_id=refund.customer_id,
            amount=-refund.amount,
            occurred_at=refund.occurred_at,
        )
    )


async def _announce(change: TierChange, cause: CloudEvent, ctx: Context) -> None:
    changed = events.TierChanged(
        customer_id=change.customer_id,
        from_tier=change.from_tier,
        to_tier=change.to_tier,
        direction=change.direction.value,
        reason=change.reason,
        effective_at=change.effective_at,
        review_at=change.review_at,
    )
    await emit(
        ctx.sink,
        changed,
        source=SOURCE,
        customer_id=change.customer_id,
        time=ctx.now,
        cause_id=cause.id,
        purpose="tier-changed",
    )


Handler = Callable[[CloudEvent, Context], Awaitable[None]]

HANDLERS: dict[str, Handler] = {
    events.CUSTOMER_ENROLLED: customer_enrolled,
    events.PURCHASE_COMPLETED: purchase_completed,
    events.PURCHASE_REFUNDED: purchase_refunded,
}
