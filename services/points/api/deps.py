"""Every dependency the points routers take, as Annotated aliases."""

from typing import Annotated

from fastapi import Depends, Request

from services.points.adapters.campaigns import SqlCampaignRepository
from services.points.adapters.repository import SqlLedgerRepository
from services.points.domain.model import Program
from shared.web.deps import AdminScope, ClockDep, ConnectionDep, ReadScope, RuntimeDep

__all__ = [
    "AdminScope",
    "CampaignsDep",
    "ClockDep",
    "LedgerDep",
    "ProgramDep",
    "ReadScope",
    "RuntimeDep",
]


def get_ledger(conn: ConnectionDep) -> SqlLedgerRepository:
    return SqlLedgerRepository(conn)


def get_campaigns(conn: ConnectionDep) -> SqlCampaignRepository:
    return SqlCampaignRepository(conn)


LedgerDep = Annotated[SqlLedgerRepository, Depends(get_ledger)]
CampaignsDep = Annotated[SqlCampaignRepository, Depends(get_campaigns)]


def get_program(request: Request) -> Program:
    program: Program = request.app.state.program
    return program


ProgramDep = Annotated[Program, Depends(get_program)]
