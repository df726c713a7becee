"""Challenges: a program manager's time-boxed goals (admin)."""

from typing import Annotated

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from services.engagement.api.deps import AdminScope, ClockDep, IdempotencyDep, RuntimeDep
from services.engagement.api.schemas import (
    ChallengeIn,
    ChallengeListOut,
    ChallengeOut,
    ChallengePatchIn,
)
from services.engagement.usecases import challenges as usecases
from shared.bounds import Identifier
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/challenges", tags=["challenges"], route_class=StrictJsonRoute)

ChallengeId = Annotated[Identifier, Path()]


@router.post("", status_code=201, response_model=ChallengeOut)
async def create_challenge(
    body: ChallengeIn, runtime: RuntimeDep, clock: ClockDep, call: IdempotencyDep, _: AdminScope
) -> ChallengeOut | JSONResponse:
    return await usecases.create_challenge(runtime.engine, clock, call, body)


@router.get("")
async def list_challenges(runtime: RuntimeDep, _: AdminScope) -> ChallengeListOut:
    return await usecases.list_challenges(runtime.engine)


@router.get("/{challenge_id}")
async def get_challenge(
    challenge_id: ChallengeId, runtime: RuntimeDep, _: AdminScope
) -> ChallengeOut:
    return await usecases.get_challenge(runtime.engine, challenge_id)


@router.patch("/{challenge_id}")
async def update_challenge(
    challenge_id: ChallengeId, patch: ChallengePatchIn, runtime: RuntimeDep, _: AdminScope
) -> ChallengeOut:
    """A JSON merge patch of name, reward, badge, ends_at, min_tier (409 once ended)."""
    return await usecases.update_challenge(runtime.engine, challenge_id, patch)


@router.delete("/{challenge_id}", status_code=204, response_class=Response)
async def end_challenge(
    challenge_id: ChallengeId, runtime: RuntimeDep, clock: ClockDep, _: AdminScope
) -> None:
    await usecases.end_challenge(runtime.engine, clock, challenge_id)
