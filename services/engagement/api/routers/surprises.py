"""Surprise rewards: a program manager's rules, and each draw for an auditor (admin)."""

from typing import Annotated

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from services.engagement.api.deps import AdminScope, ClockDep, IdempotencyDep, RuntimeDep
from services.engagement.api.schemas import (
    DrawOut,
    SurpriseIn,
    SurpriseListOut,
    SurpriseOut,
    SurprisePatchIn,
)
from services.engagement.bootstrap import surprise_key
from services.engagement.settings import EngagementSettings
from services.engagement.usecases import surprises as usecases
from shared.bounds import Identifier
from shared.web.deps import SettingsDep
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/surprises", tags=["surprises"], route_class=StrictJsonRoute)

SurpriseId = Annotated[Identifier, Path()]
PartnerId = Annotated[Identifier, Path()]
PurchaseId = Annotated[Identifier, Path()]


@router.post("", status_code=201, response_model=SurpriseOut)
async def create_surprise(
    body: SurpriseIn, runtime: RuntimeDep, clock: ClockDep, call: IdempotencyDep, _: AdminScope
) -> SurpriseOut | JSONResponse:
    return await usecases.create_surprise(runtime.engine, clock, call, body)


@router.get("")
async def list_surprises(runtime: RuntimeDep, _: AdminScope) -> SurpriseListOut:
    return await usecases.list_surprises(runtime.engine)


@router.get("/{surprise_id}")
async def get_surprise(surprise_id: SurpriseId, runtime: RuntimeDep, _: AdminScope) -> SurpriseOut:
    return await usecases.get_surprise(runtime.engine, surprise_id)


@router.patch("/{surprise_id}")
async def update_surprise(
    surprise_id: SurpriseId, patch: SurprisePatchIn, runtime: RuntimeDep, _: AdminScope
) -> SurpriseOut:
    """A JSON merge patch of name, reward, chance, daily_budget, cooldown_days, ends_at,
    min_tier (409 once ended)."""
    return await usecases.update_surprise(runtime.engine, surprise_id, patch)


@router.delete("/{surprise_id}", status_code=204, response_class=Response)
async def end_surprise(
    surprise_id: SurpriseId, runtime: RuntimeDep, clock: ClockDep, _: AdminScope
) -> None:
    await usecases.end_surprise(runtime.engine, clock, surprise_id)


@router.get("/{surprise_id}/draws/{partner_id}/{purchase_id}")
async def get_draw(
    surprise_id: SurpriseId,
    partner_id: PartnerId,
    purchase_id: PurchaseId,
    runtime: RuntimeDep,
    settings: SettingsDep,
    _: AdminScope,
) -> DrawOut:
    assert isinstance(settings, EngagementSettings)
    secret = surprise_key(settings)
    return await usecases.draw_of(runtime.engine, secret, surprise_id, partner_id, purchase_id)
