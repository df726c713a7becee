"""What points does with each event it consumes: plain functions, side effects injected."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from services.points.adapters.repository import LedgerRepository
from services.points.domain.model import LedgerEntry, Program, purchase_earning, welcome_bonus
from shared import events
from shared.events import CloudEvent, derived_event_id
from shared.outbox import EventSink, emit

SOURCE = "points"


@dataclass(frozen=True)
class Context:
    ledger: LedgerRepository
    sink: EventSink
    program: Program
    now: datetime


async def customer_enrolled(cause: CloudEvent, ctx: Context) -> None:
    enrolled = events.CustomerEnrolled.model_validate(cause.data)
    if not await ctx.ledger.add_customer(
        enrolled.customer_id, enrolled.partner_id, enrolled.enrolled_at
    ):
        return
    bonus = welcome_bonus(
        ctx.program,
        entry_id=derived_event_id(cause.id, "welcome-bonus"),
        customer_id=enrolled.customer_id,
        enrolled_at=enrolled.enrolled_at,
    )
    await _grant(bonus, cause, ctx, rule_ids=["welcome"])


async def purchase_completed(cause: CloudEvent, ctx: Context) -> None:
    purchase = events.PurchaseCompleted.model_validate(cause.data)
    if purchase.currency != ctx.program.currency:
        raise ValueError(
            f"purchase {purchase.purchase_id} is in {purchase.currency}, "
            f"the program in {ctx.program.currency}"
        )
    earning = purchase_earning(
        ctx.program,
        # Keyed by the purchase, not the event: one purchase earns once whatever carried it.
        entry_id=f"purchase:{purchase.partner_id}:{purchase.purchase_id}",
        customer_id=purchase.customer_id,
        purchase_id=purchase.purchase_id,
        total=purchase.total,
        occurred_at=purchase.occurred_at,
    )
    await _grant(earning, cause, ctx, rule_ids=["base"])


async def tier_changed(cause: CloudEvent, ctx: Context) -> None:
    change = events.TierChanged.model_validate(cause.data)
    await ctx.ledger.set_tier(change.customer_id, change.to_tier, change.effective_at)


async def _grant(entry: LedgerEntry, cause: CloudEvent, ctx: Context, rule_ids: list[str]) -> None:
    if entry.points <= 0 or not await ctx.ledger.record(entry):
        return
    assert entry.expires_at is not None
    earned = events.PointsEarned(
        customer_id=entry.customer_id,
        points=entry.points,
        purchase_id=entry.purchase_id,
        reason=entry.reason,
        rule_ids=rule_ids,
        available_at=entry.available_at,
        expires_at=entry.expires_at,
    )
    await emit(
        ctx.sink,
        earned,
        source=SOURCE,
        customer_id=entry.customer_id,
        time=ctx.now,
        cause_id=cause.id,
        purpose="points-earned",
    )


Handler = Callable[[CloudEvent, Context], Awaitable[None]]

HANDLERS: dict[str, Handler] = {
    events.CUSTOMER_ENROLLED: customer_enrolled,
    events.PURCHASE_COMPLETED: purchase_completed,
    events.TIER_CHANGED: tier_changed,
}
