"""Staff adjustments and surprise rewards: points given or taken by staff, with who and why:
who is the admin credential the call carries, never a name in the body."""

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from services.points.api.deps import AdminCredential, ClockDep, ProgramDep, RuntimeDep
from services.points.api.problems import problems
from services.points.api.schemas import AdjustmentIn, AdjustmentOut
from services.points.usecases import adjustments
from shared.bounds import Identifier
from shared.web.idempotency import IdempotencyDep
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/customers", tags=["adjustments"], route_class=StrictJsonRoute)


@router.post(
    "/{customer_id}/adjustments",
    status_code=201,
    response_model=AdjustmentOut,
    responses=problems(401, 403, 404, 409, 422),
)
async def add_adjustment(
    customer_id: Annotated[Identifier, Path()],
    body: AdjustmentIn,
    runtime: RuntimeDep,
    clock: ClockDep,
    program: ProgramDep,
    call: IdempotencyDep,
    credential: AdminCredential,
) -> AdjustmentOut | JSONResponse:
    return await adjustments.add_adjustment(
        runtime.engine, clock, program, call, customer_id, body, actor=credential.actor
    )
