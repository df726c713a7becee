"""A customer's tier: their standing, its history, and staff overrides."""

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tiers.adapters import tables
from services.tiers.adapters.programs import ProgramSource
from services.tiers.adapters.repository import SqlTierRepository
from services.tiers.api.deps import (
    AdminScope,
    ClockDep,
    IdempotencyDep,
    ProgramDep,
    ProgramsDep,
    ReadScope,
    RuntimeDep,
    TiersDep,
)
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
    amount_to_keep_tier,
    override,
    progress,
    qualifying_spend,
)
from services.tiers.handlers import announce_override
from shared.bounds import Identifier
from shared.clock import Clock
from shared.messaging.outbox import CollectingSink, Outbox
from shared.web.problems import PROBLEM_JSON, Problem

router = APIRouter(prefix="/v1/customers", tags=["customers"])

_MEANINGS = {
    400: "A malformed Idempotency-Key",
    401: "A missing or unknown service token",
    403: "The call needs the admin scope",
    404: "No tier is known for the customer",
    409: "The customer is already in that tier, or the Idempotency-Key was used for another call",
    422: "Invalid request, a tier the program lacks, or an `until` not in the future",
}


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"description": _MEANINGS[status], "content": {PROBLEM_JSON: {}}}
        for status in statuses
    }


def _unknown(customer_id: str) -> Problem:
    return Problem(
        404, "Not found", f"no tier is known for customer {customer_id!r}", slug="unknown-customer"
    )


@router.get("/{customer_id}/tier", responses=_problems(401, 404, 422))
async def get_tier(
    customer_id: Annotated[Identifier, Path()],
    tiers: TiersDep,
    program: ProgramDep,
    clock: ClockDep,
    _: ReadScope,
) -> CustomerTierOut:
    customer = await tiers.customer(customer_id)
    if customer is None:
        raise _unknown(customer_id)
    return await _standing(tiers, program, clock, customer)


async def _standing(
    tiers: SqlTierRepository, program: Program, clock: Clock, customer: CustomerTier
) -> CustomerTierOut:
    now = clock.now()
    since = min(program.earliest_counted(now), program.earliest_counted(customer.review_at))
    activities = await tiers.activities(customer.customer_id, since=since)
    standing = progress(program, customer.tier, qualifying_spend(program, activities, now))
    return CustomerTierOut(
        customer_id=customer.customer_id,
        tier=customer.tier,
        since=customer.since,
        qualifying_spend=standing.qualifying_spend,
        next_tier=standing.next_tier,
        amount_to_next_tier=standing.amount_to_next_tier,
        review_at=customer.review_at,
        amount_to_keep_tier=amount_to_keep_tier(program, customer, activities),
    )


@router.get("/{customer_id}/tier/history", responses=_problems(401, 404, 422))
async def get_tier_history(
    customer_id: Annotated[Identifier, Path()], tiers: TiersDep, _: ReadScope
) -> TierHistoryOut:
    if await tiers.customer(customer_id) is None:
        raise _unknown(customer_id)
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
            for change in await tiers.history(customer_id)
        ],
    )


@router.post(
    "/{customer_id}/tier",
    response_model=CustomerTierOut,
    responses=_problems(400, 401, 403, 404, 409, 422),
)
async def override_tier(
    customer_id: Annotated[Identifier, Path()],
    body: TierOverrideIn,
    runtime: RuntimeDep,
    programs: ProgramsDep,
    clock: ClockDep,
    call: IdempotencyDep,
    _: AdminScope,
) -> CustomerTierOut | JSONResponse:
    """Staff assign a tier: it holds as a floor (spend may still raise it) until `until`,
    when it is reviewed, or by default a year after the change."""
    async with runtime.engine.begin() as conn:
        answer = await _override(conn, customer_id, body, programs, clock, call)
    runtime.relay.notify()
    return answer


async def _override(
    conn: AsyncConnection,
    customer_id: str,
    body: TierOverrideIn,
    programs: ProgramSource,
    clock: Clock,
    call: IdempotencyDep,
) -> CustomerTierOut | JSONResponse:
    if (replayed := await call.replay(conn, tables.idempotency_keys)) is not None:
        return replayed
    program = await programs.for_writing(conn)
    tiers = SqlTierRepository(conn)
    locked = await tiers.lock_customers([customer_id])
    customer = locked.get(customer_id)
    if customer is None:
        raise _unknown(customer_id)
    now = clock.now()
    if body.tier not in {tier.name for tier in program.tiers}:
        raise Problem(
            422, "Unprocessable", f"the program has no tier {body.tier!r}", slug="unknown-tier"
        )
    if body.until is not None and body.until <= now:
        raise Problem(
            422, "Unprocessable", "until must be in the future", slug="override-in-the-past"
        )
    try:
        change = override(
            program,
            customer,
            tier=body.tier,
            reason=body.reason,
            actor=body.actor,
            at=now,
            until=body.until,
        )
    except ValueError as refused:
        raise Problem(409, "Conflict", str(refused), slug="override-refused") from None
    overridden = after_change(customer, change)
    await tiers.save_customers([overridden])
    await tiers.append_history([change])
    sink = CollectingSink()
    await announce_override(change, sink, now)
    await Outbox(conn, tables.outbox, clock).add_all(sink.events)
    answer = await _standing(tiers, program, clock, overridden)
    await call.remember(conn, tables.idempotency_keys, 200, answer, now)
    return answer
