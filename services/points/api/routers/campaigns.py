"""Campaigns: multipliers and bonuses for a partner, a store, a category and a period."""

import uuid
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from services.points.adapters import tables
from services.points.adapters.campaigns import SqlCampaignRepository
from services.points.api.deps import AdminScope, CampaignsDep, ClockDep, RuntimeDep
from services.points.api.schemas import (
    CampaignIn,
    CampaignListOut,
    CampaignOut,
    CampaignPatchIn,
)
from services.points.domain.earning import Campaign, campaign_flaw
from shared.bounds import Identifier
from shared.web.idempotency import IdempotencyDep
from shared.web.problems import Problem
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"], route_class=StrictJsonRoute)

CampaignId = Annotated[Identifier, Path()]


@router.post("", status_code=201, response_model=CampaignOut)
async def create_campaign(
    body: CampaignIn, runtime: RuntimeDep, clock: ClockDep, call: IdempotencyDep, _: AdminScope
) -> CampaignOut | JSONResponse:
    campaign = _sound(Campaign(campaign_id=str(uuid.uuid4()), **body.model_dump()))
    async with runtime.engine.begin() as conn:
        if (replayed := await call.replay(conn, tables.idempotency_keys)) is not None:
            return replayed
        now = clock.now()
        await SqlCampaignRepository(conn).add(campaign, created_at=now)
        answer = _out(campaign)
        await call.remember(conn, tables.idempotency_keys, 201, answer, now)
    return answer


@router.get("")
async def list_campaigns(campaigns: CampaignsDep, _: AdminScope) -> CampaignListOut:
    return CampaignListOut(items=[_out(c) for c in await campaigns.list_all()])


@router.get("/{campaign_id}")
async def get_campaign(
    campaign_id: CampaignId, campaigns: CampaignsDep, _: AdminScope
) -> CampaignOut:
    campaign = await campaigns.get(campaign_id)
    if campaign is None:
        raise _unknown(campaign_id)
    return _out(campaign)


@router.patch("/{campaign_id}")
async def update_campaign(
    campaign_id: CampaignId, patch: CampaignPatchIn, runtime: RuntimeDep, _: AdminScope
) -> CampaignOut:
    async with runtime.engine.begin() as conn:
        campaigns = SqlCampaignRepository(conn)
        current = await campaigns.get(campaign_id, for_update=True)
        if current is None:
            raise _unknown(campaign_id)
        changed = _sound(replace(current, **patch.changes()))  # type: ignore[arg-type]
        await campaigns.replace(changed)
    return _out(changed)


@router.delete("/{campaign_id}", status_code=204, response_class=Response)
async def delete_campaign(campaign_id: CampaignId, runtime: RuntimeDep, _: AdminScope) -> None:
    async with runtime.engine.begin() as conn:
        if not await SqlCampaignRepository(conn).delete(campaign_id):
            raise _unknown(campaign_id)


def _sound(campaign: Campaign) -> Campaign:
    if (flaw := campaign_flaw(campaign)) is not None:
        raise Problem(422, "Invalid campaign", flaw, slug="invalid-campaign")
    return campaign


def _out(campaign: Campaign) -> CampaignOut:
    return CampaignOut(
        id=campaign.campaign_id,
        name=campaign.name,
        multiplier=campaign.multiplier,
        bonus=campaign.bonus,
        partner_id=campaign.partner_id,
        store_id=campaign.store_id,
        category=campaign.category,
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        validity_days=campaign.validity_days,
    )


def _unknown(campaign_id: str) -> Problem:
    return Problem(404, "Not found", f"no campaign {campaign_id!r}", slug="unknown-campaign")
