"""Campaigns: multipliers and bonuses for a partner, a store, a category, a tier, a segment and
a period."""

import uuid
from dataclasses import replace

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.points import ports
from services.points.adapters.repositories.api import campaign_repository
from services.points.api.schemas import CampaignIn, CampaignListOut, CampaignOut, CampaignPatchIn
from services.points.domain.earning import Campaign, campaign_flaw
from services.points.usecases.common import KEYS
from shared.clock import Clock
from shared.storage.transactions import in_transaction
from shared.web.idempotency import IdempotentCall, run_keyed
from shared.web.problems import Problem


async def create_campaign(
    engine: AsyncEngine, clock: Clock, call: IdempotentCall, body: CampaignIn
) -> CampaignOut | JSONResponse:
    campaign = _sound(Campaign(campaign_id=str(uuid.uuid4()), **body.model_dump()))

    async def work(conn: AsyncConnection) -> CampaignOut:
        await campaign_repository(conn).add(campaign, created_at=clock.now())
        return _out(campaign)

    return await run_keyed(engine, call, KEYS, status_code=201, clock=clock, work=work)


async def list_campaigns(campaigns: ports.CampaignRepository) -> CampaignListOut:
    return CampaignListOut(items=[_out(c) for c in await campaigns.list_all()])


async def get_campaign(campaigns: ports.CampaignRepository, campaign_id: str) -> CampaignOut:
    campaign = await campaigns.get(campaign_id)
    if campaign is None:
        raise _unknown(campaign_id)
    return _out(campaign)


async def update_campaign(
    engine: AsyncEngine, campaign_id: str, patch: CampaignPatchIn
) -> CampaignOut:
    async def work(conn: AsyncConnection) -> Campaign:
        campaigns = campaign_repository(conn)
        current = await campaigns.get(campaign_id, for_update=True)
        if current is None:
            raise _unknown(campaign_id)
        changed = _sound(replace(current, **patch.changes()))  # type: ignore[arg-type]
        await campaigns.replace(changed)
        return changed

    return _out(await in_transaction(engine, work))


async def delete_campaign(engine: AsyncEngine, campaign_id: str) -> None:
    async def work(conn: AsyncConnection) -> None:
        if not await campaign_repository(conn).delete(campaign_id):
            raise _unknown(campaign_id)

    await in_transaction(engine, work)


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
        tier=campaign.tier,
        segment=campaign.segment,
    )


def _unknown(campaign_id: str) -> Problem:
    return Problem(404, "Not found", f"no campaign {campaign_id!r}", slug="unknown-campaign")
