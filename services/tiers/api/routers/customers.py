"""A customer's tier: their standing, its history, and staff overrides."""

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from services.tiers.api.deps import (
    AdminCredential,
    ClockDep,
    IdempotencyDep,
    ProgramsDep,
    ReadScope,
    RuntimeDep,
)
from services.tiers.api.schemas import CustomerTierOut, TierHistoryOut, TierOverrideIn
from services.tiers.usecases import customers
from shared.bounds import Identifier
from shared.web.problems import PROBLEM_JSON

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


@router.get("/{customer_id}/tier", responses=_problems(401, 404, 422))
async def get_tier(
    customer_id: Annotated[Identifier, Path()],
    runtime: RuntimeDep,
    programs: ProgramsDep,
    clock: ClockDep,
    _: ReadScope,
) -> CustomerTierOut:
    return await customers.tier_of(runtime.engine, programs, clock, customer_id)


@router.get("/{customer_id}/tier/history", responses=_problems(401, 404, 422))
async def get_tier_history(
    customer_id: Annotated[Identifier, Path()], runtime: RuntimeDep, _: ReadScope
) -> TierHistoryOut:
    return await customers.history_of(runtime.engine, customer_id)


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
    credential: AdminCredential,
) -> CustomerTierOut | JSONResponse:
    """Staff assign a tier: it holds as a floor (spend may still raise it) until `until`,
    when it is reviewed, or by default a year after the change. The history names the admin
    credential the call carries as its actor (a body naming one is a 422)."""
    return await customers.override_tier(
        runtime, programs, clock, call, customer_id, body, actor=credential.actor
    )
