"""Every dependency the points routers take, as Annotated aliases."""

from typing import Annotated

from fastapi import Depends

from services.points.adapters.campaigns import SqlCampaignRepository
from services.points.adapters.repository import SqlLedgerRepository
from shared.http import AdminScope, ClockDep, ConnectionDep, ReadScope, RuntimeDep

__all__ = ["AdminScope", "CampaignsDep", "ClockDep", "LedgerDep", "ReadScope", "RuntimeDep"]


def get_ledger(conn: ConnectionDep) -> SqlLedgerRepository:
    return SqlLedgerRepository(conn)


def get_campaigns(conn: ConnectionDep) -> SqlCampaignRepository:
    return SqlCampaignRepository(conn)


LedgerDep = Annotated[SqlLedgerRepository, Depends(get_ledger)]
CampaignsDep = Annotated[SqlCampaignRepository, Depends(get_campaigns)]
