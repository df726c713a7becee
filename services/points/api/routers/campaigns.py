"""Campaigns: multipliers and bonuses for a partner, a store, a category and a period."""

from typing import Annotated

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from services.points.api.deps import AdminScope, CampaignsDep, ClockDep, RuntimeDep
from services.points.api.schemas import (
    CampaignIn,
    CampaignListOut,
    CampaignOut,
    CampaignPatchIn,
)
from services.points.usecases import campaigns as usecases
from shared.bounds import Identifier
from shared.web.idempotency import IdempotencyDep
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"], route_class=StrictJsonRoute)

CampaignId = Annotated[Identifier, Path()]


@router.post("", status_code=201, response_model=CampaignOut)
async def create_campaign(
    body: CampaignIn, runtime: RuntimeDep, clock: ClockDep, call: IdempotencyDep, _: AdminScope
) -> CampaignOut | JSONResponse:
    return await usecases.create_campaign(runtime.engine, clock, call, body)


@router.get("")
async def list_campaigns(campaigns: CampaignsDep, _: AdminScope) -> CampaignListOut:
    return await usecases.list_campaigns(campaigns)


@router.get("/{campaign_id}")
async def get_campaign(
    campaign_id: CampaignId, campaigns: CampaignsDep, _: AdminScope
) -> CampaignOut:
    return await usecases.get_campaign(campaigns, campaign_id)


@router.patch("/{campaign_id}")
async def update_campaign(
    campaign_id: CampaignId, patch: CampaignPatchIn, runtime: RuntimeDep, _: AdminScope
) -> CampaignOut:
    return await usecases.update_campaign(runtime.engine, campaign_id, patch)


@router.delete("/{campaign_id}", status_code=204, response_class=Response)
async def delete_campaign(campaign_id: CampaignId, runtime: RuntimeDep, _: AdminScope) -> None:
    await usecases.delete_campaign(runtime.engine, campaign_id)
