"""Holds for POS terminals: points reserved before the payment completes, then captured,
voided, or lapsed by the `lapse-holds` job after the program's timeout."""

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from services.points.api.deps import AdminOrTillCaller, ClockDep, ProgramDep, RuntimeDep
from services.points.api.problems import problems
from services.points.api.schemas import HoldIn, HoldOut, HoldStateOut
from services.points.domain.holds import HoldAction
from services.points.usecases import holds
from shared.bounds import Identifier
from shared.web.idempotency import IdempotencyDep
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1", tags=["holds"], route_class=StrictJsonRoute)

HoldId = Annotated[Identifier, Path()]


@router.post(
    "/customers/{customer_id}/holds",
    status_code=201,
    response_model=HoldOut,
    responses=problems(400, 401, 403, 404, 409, 422),
)
async def place_hold(
    customer_id: Annotated[Identifier, Path()],
    body: HoldIn,
    runtime: RuntimeDep,
    clock: ClockDep,
    program: ProgramDep,
    call: IdempotencyDep,
    caller: AdminOrTillCaller,
) -> HoldOut | JSONResponse:
    return await holds.place_hold(runtime.engine, clock, program, call, caller, customer_id, body)


@router.post(
    "/holds/{hold_id}/capture",
    response_model=HoldStateOut,
    # 400: a malformed Idempotency-Key (routes with a body get it documented with the body).
    responses=problems(400, 401, 403, 404, 409, 422),
)
async def capture_hold(
    hold_id: HoldId,
    runtime: RuntimeDep,
    clock: ClockDep,
    call: IdempotencyDep,
    caller: AdminOrTillCaller,
) -> HoldStateOut | JSONResponse:
    return await holds.settle_hold(runtime.engine, clock, call, caller, hold_id, HoldAction.CAPTURE)


@router.post(
    "/holds/{hold_id}/void",
    response_model=HoldStateOut,
    # 400: a malformed Idempotency-Key (routes with a body get it documented with the body).
    responses=problems(400, 401, 403, 404, 409, 422),
)
async def void_hold(
    hold_id: HoldId,
    runtime: RuntimeDep,
    clock: ClockDep,
    call: IdempotencyDep,
    caller: AdminOrTillCaller,
) -> HoldStateOut | JSONResponse:
    return await holds.settle_hold(runtime.engine, clock, call, caller, hold_id, HoldAction.VOID)
