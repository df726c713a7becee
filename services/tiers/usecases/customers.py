"""A customer's tier: their standing, its history, and a staff override."""

from __future__ import annotations

from datetime import datetime

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.tiers.adapters import tables
from services.tiers.adapters.repositories.api import api_repository
from services.tiers.api.schemas import (
    CustomerTierOut,
    TierChangeOut,
    TierHistoryOut,
    TierOverrideIn,
)
from services.tiers.domain.model import (
    CustomerTier,
    Program,
    after_change,
    override,
    progress,
    standing,
    to_keep_tier,
)
from services.tiers.handlers import LookedAt, announce_override, counted_activity
from services.tiers.ports import ApiRepository
from services.tiers.programs import ProgramSource
from shared.clock import Clock
from shared.messaging.outbox import CollectingSink, Outbox
from shared.runtime.process import Runtime
from shared.storage.transactions import read_snapshot
from shared.web.idempotency import IdempotentCall, run_keyed
from shared.web.problems import Problem


def unknown_customer(customer_id: str) -> Problem:
    return Problem(
        404, "Not found", f"no tier is known for customer {customer_id!r}", slug="unknown-customer"
    )


async def tier_of(
    engine: AsyncEngine, programs: ProgramSource, clock: Clock, customer_id: str
) -> CustomerTierOut:
    """The customer's tier and their progress under the program in force."""
    async with read_snapshot(engine) as conn:
        program = await programs.current(conn)
        tiers = api_repository(conn)
        customer = await tiers.customer(customer_id)
        if customer is None:
            raise unknown_customer(customer_id)
        return await _standing(tiers, program, clock, customer)


async def history_of(engine: AsyncEngine, customer_id: str) -> TierHistoryOut:
    """The customer's tier changes, newest first."""
    async with read_snapshot(engine) as conn:
        tiers = api_repository(conn)
        if await tiers.customer(customer_id) is None:
            raise unknown_customer(customer_id)
        changes = await tiers.history(customer_id)
    return TierHistoryOut(
        customer_id=customer_id,
        changes=[
            TierChangeOut(
                from_tier=change.from_tier,
                to_tier=change.to_tier,
                direction=change.direction.value,
                reason=change.reason,
                effective_at=change.effective_at,
                review_at=change.review_at,
                actor=change.actor,
            )
            for change in changes
        ],
    )


async def override_tier(
    runtime: Runtime,
    programs: ProgramSource,
    clock: Clock,
    call: IdempotentCall,
    customer_id: str,
    request: TierOverrideIn,
    *,
    actor: str,
) -> CustomerTierOut | JSONResponse:
    """Staff assign a tier: it holds as a floor (spend may still raise it) until `until`,
    when it is reviewed, or by default a year after the change. Announced with a
    tier.changed naming `actor` (the credential the call carries); the answer is kept under
    the call's Idempotency-Key."""

    async def work(conn: AsyncConnection) -> CustomerTierOut:
        return await _override(conn, programs, clock, customer_id, request, actor)

    answer = await run_keyed(
        runtime.engine, call, tables.idempotency_keys, status_code=200, clock=clock, work=work
    )
    runtime.relay.notify()
    return answer


async def _override(
    conn: AsyncConnection,
    programs: ProgramSource,
    clock: Clock,
    customer_id: str,
    request: TierOverrideIn,
    actor: str,
) -> CustomerTierOut:
    program = await programs.for_writing(conn)
    tiers = api_repository(conn)
    customer = (await tiers.lock_customers([customer_id])).get(customer_id)
    if customer is None:
        raise unknown_customer(customer_id)
    now = clock.now()
    _check_override(program, request, now)
    try:
        change = override(
            program,
            customer,
            tier=request.tier,
            reason=request.reason,
            actor=actor,
            at=now,
            until=request.until,
        )
    except ValueError as refused:
        raise Problem(409, "Conflict", str(refused), slug="override-refused") from None
    overridden = after_change(customer, change)
    await tiers.save_customers([overridden])
    await tiers.append_history([change])
    sink = CollectingSink()
    await announce_override(change, sink, now)
    await Outbox(conn, tables.outbox, clock).add_all(sink.events)
    return await _standing(tiers, program, clock, overridden)


def _check_override(program: Program, request: TierOverrideIn, now: datetime) -> None:
    if request.tier not in {tier.name for tier in program.tiers}:
        raise Problem(
            422, "Unprocessable", f"the program has no tier {request.tier!r}", slug="unknown-tier"
        )
    if request.until is not None and request.until <= now:
        raise Problem(
            422, "Unprocessable", "until must be in the future", slug="override-in-the-past"
        )


async def _standing(
    tiers: ApiRepository, program: Program, clock: Clock, customer: CustomerTier
) -> CustomerTierOut:
    now = clock.now()
    since = min(program.earliest_counted(now), program.earliest_counted(customer.review_at))
    looked_at = LookedAt(since, frozenset({now, customer.review_at}))
    counted = await counted_activity(tiers, program, {customer.customer_id: looked_at})
    activities = counted[customer.customer_id]
    last = await tiers.last_change(customer.customer_id)
    ahead = progress(program, customer.tier, standing(program, activities, now))
    keep = to_keep_tier(program, customer, activities)
    return CustomerTierOut(
        customer_id=customer.customer_id,
        tier=customer.tier,
        since=customer.since,
        qualifying_spend=ahead.qualifying_spend,
        next_tier=ahead.next_tier,
        amount_to_next_tier=ahead.amount_to_next_tier,
        review_at=customer.review_at,
        amount_to_keep_tier=keep.amount,
        qualifying_referrals=ahead.qualifying_referrals,
        qualifying_visits=ahead.qualifying_visits,
        referrals_to_next_tier=ahead.referrals_to_next_tier,
        visits_to_next_tier=ahead.visits_to_next_tier,
        next_tier_match=ahead.next_tier_match.value if ahead.next_tier_match else None,
        referrals_to_keep_tier=keep.referrals,
        visits_to_keep_tier=keep.visits,
        tier_match=keep.match.value,
        reason=last.reason if last is not None and last.to_tier == customer.tier else None,
    )
