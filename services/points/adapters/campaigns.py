"""The campaigns as the API manages them and the consumer reads them."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.points.adapters.tables import campaigns
from services.points.domain.earning import Campaign


class CampaignRepository(Protocol):
    async def add(self, campaign: Campaign, created_at: datetime) -> None: ...

    async def get(self, campaign_id: str, *, for_update: bool = False) -> Campaign | None: ...

    async def list_all(self) -> list[Campaign]:
        """Every campaign, the soonest-starting first."""
        ...

    async def replace(self, campaign: Campaign) -> None: ...

    async def delete(self, campaign_id: str) -> bool:
        """True when there was such a campaign."""
        ...


class SqlCampaignRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, campaign: Campaign, created_at: datetime) -> None:
        await self._conn.execute(campaigns.insert().values(**_row(campaign), created_at=created_at))

    async def get(self, campaign_id: str, *, for_update: bool = False) -> Campaign | None:
        query = sa.select(campaigns).where(campaigns.c.campaign_id == campaign_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return None if row is None else campaign_of(row)

    async def list_all(self) -> list[Campaign]:
        rows = await self._conn.execute(
            sa.select(campaigns).order_by(campaigns.c.starts_at, campaigns.c.campaign_id)
        )
        return [campaign_of(row) for row in rows]

    async def replace(self, campaign: Campaign) -> None:
        values = _row(campaign)
        del values["campaign_id"]
        await self._conn.execute(
            campaigns.update()
            .where(campaigns.c.campaign_id == campaign.campaign_id)
            .values(**values)
        )

    async def delete(self, campaign_id: str) -> bool:
        result = await self._conn.execute(
            campaigns.delete().where(campaigns.c.campaign_id == campaign_id)
        )
        return result.rowcount > 0


def _row(campaign: Campaign) -> dict[str, Any]:
    return asdict(campaign)


def campaign_of(row: sa.Row[Any]) -> Campaign:
    return Campaign(
        campaign_id=row.campaign_id,
        name=row.name,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        multiplier=row.multiplier,
        bonus=row.bonus,
        partner_id=row.partner_id,
        store_id=row.store_id,
        category=row.category,
        validity_days=row.validity_days,
    )
