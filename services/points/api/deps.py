"""Every dependency the points routers take, as Annotated aliases."""

from typing import Annotated

from fastapi import Depends, Request

from services.points import ports
from services.points.adapters.repositories.api import campaign_repository, ledger_repository
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


def get_ledger(conn: ConnectionDep) -> ports.LedgerRepository:
    return ledger_repository(conn)


def get_campaigns(conn: ConnectionDep) -> ports.CampaignRepository:
    return campaign_repository(conn)


LedgerDep = Annotated[ports.LedgerRepository, Depends(get_ledger)]
CampaignsDep = Annotated[ports.CampaignRepository, Depends(get_campaigns)]


def get_program(request: Request) -> Program:
    program: Program = request.app.state.program
    return program


ProgramDep = Annotated[Program, Depends(get_program)]
