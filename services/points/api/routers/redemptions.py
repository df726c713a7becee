"""Redemptions: a customer's available points spent, free-form or on a reward of the
catalogue (which issues a coupon); by an administrator or a till (through ingest)."""

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from services.points.api.deps import AdminOrTillCaller, ClockDep, RuntimeDep
from services.points.api.problems import problems
from services.points.api.schemas import RedemptionIn, RedemptionOut
from services.points.usecases import redemptions
from shared.bounds import Identifier
from shared.web.idempotency import IdempotencyDep
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/customers", tags=["redemptions"], route_class=StrictJsonRoute)


@router.post(
    "/{customer_id}/redemptions",
    status_code=201,
    response_model=RedemptionOut,
    responses=problems(400, 401, 403, 404, 409, 422),
)
async def redeem(
    customer_id: Annotated[Identifier, Path()],
    body: RedemptionIn,
    runtime: RuntimeDep,
    clock: ClockDep,
    call: IdempotencyDep,
    caller: AdminOrTillCaller,
) -> RedemptionOut | JSONResponse:
    return await redemptions.redeem(runtime.engine, clock, call, caller, customer_id, body)
