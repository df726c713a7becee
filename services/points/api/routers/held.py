"""Earnings the velocity guard held for review: staff release them (they become a lot, and
repay debt first) or reject them, once; the operate role (or admin) decides."""

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from services.points.api.deps import ClockDep, OperateScope, RuntimeDep
from services.points.api.problems import problems
from services.points.api.schemas import HeldDecisionOut
from services.points.usecases import held
from shared.bounds import Identifier
from shared.web.idempotency import IdempotencyDep
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/held", tags=["held earnings"], route_class=StrictJsonRoute)

HeldId = Annotated[Identifier, Path()]


@router.post(
    "/{held_id}/release",
    response_model=HeldDecisionOut,
    # 400: a malformed Idempotency-Key (routes with a body get it documented with the body).
    responses=problems(400, 401, 403, 404, 409, 422),
)
async def release_held(
    held_id: HeldId, runtime: RuntimeDep, clock: ClockDep, call: IdempotencyDep, _: OperateScope
) -> HeldDecisionOut | JSONResponse:
    return await held.decide_held(runtime.engine, clock, call, held_id, "released")


@router.post(
    "/{held_id}/reject",
    response_model=HeldDecisionOut,
    responses=problems(400, 401, 403, 404, 409, 422),
)
async def reject_held(
    held_id: HeldId, runtime: RuntimeDep, clock: ClockDep, call: IdempotencyDep, _: OperateScope
) -> HeldDecisionOut | JSONResponse:
    return await held.decide_held(runtime.engine, clock, call, held_id, "rejected")
