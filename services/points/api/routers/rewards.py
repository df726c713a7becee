"""The reward catalogue (admin; read to look), and what one member may redeem now (read,
admin, or a till through ingest)."""

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from services.points.api.deps import (
    AdminScope,
    CatalogueDep,
    ClockDep,
    LedgerDep,
    ReadOrTillCaller,
    ReadScope,
    RuntimeDep,
)
from services.points.api.problems import problems
from services.points.api.schemas import (
    CustomerRewardsOut,
    RewardIn,
    RewardListOut,
    RewardOut,
    RewardPatchIn,
)
from services.points.usecases import rewards as usecases
from shared.bounds import Identifier
from shared.web.idempotency import IdempotencyDep
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1", tags=["rewards"], route_class=StrictJsonRoute)

RewardId = Annotated[Identifier, Path()]


@router.post(
    "/rewards",
    status_code=201,
    response_model=RewardOut,
    responses=problems(400, 401, 403, 422),
)
async def create_reward(
    body: RewardIn, runtime: RuntimeDep, clock: ClockDep, call: IdempotencyDep, _: AdminScope
) -> RewardOut | JSONResponse:
    return await usecases.create_reward(runtime.engine, clock, call, body)


@router.get("/rewards", responses=problems(401, 403, 422))
async def list_rewards(
    catalogue: CatalogueDep,
    clock: ClockDep,
    _: ReadScope,
    include_ended: Annotated[bool, Query()] = False,
) -> RewardListOut:
    return await usecases.list_rewards(catalogue, clock.now(), include_ended=include_ended)


@router.get("/rewards/{reward_id}", responses=problems(401, 403, 404, 422))
async def get_reward(reward_id: RewardId, catalogue: CatalogueDep, _: ReadScope) -> RewardOut:
    return await usecases.get_reward(catalogue, reward_id)


@router.patch(
    "/rewards/{reward_id}", response_model=RewardOut, responses=problems(400, 401, 403, 404, 422)
)
async def update_reward(
    reward_id: RewardId,
    patch: RewardPatchIn,
    runtime: RuntimeDep,
    clock: ClockDep,
    call: IdempotencyDep,
    _: AdminScope,
) -> RewardOut | JSONResponse:
    return await usecases.update_reward(runtime.engine, clock, call, reward_id, patch)


@router.delete(
    "/rewards/{reward_id}", response_model=RewardOut, responses=problems(400, 401, 403, 404)
)
async def retire_reward(
    reward_id: RewardId, runtime: RuntimeDep, clock: ClockDep, call: IdempotencyDep, _: AdminScope
) -> RewardOut | JSONResponse:
    return await usecases.retire_reward(runtime.engine, clock, call, reward_id)


@router.get("/customers/{customer_id}/rewards", responses=problems(400, 401, 403, 404, 422))
async def customer_rewards(
    customer_id: Annotated[Identifier, Path()],
    ledger: LedgerDep,
    catalogue: CatalogueDep,
    clock: ClockDep,
    caller: ReadOrTillCaller,
) -> CustomerRewardsOut:
    return await usecases.customer_rewards(ledger, catalogue, caller, customer_id, clock.now())
