"""Every dependency the points routers take, as Annotated aliases."""

from typing import Annotated

from fastapi import Depends, Request

from services.points import ports
from services.points.adapters.repositories.api import campaign_repository, ledger_repository
from services.points.adapters.repositories.catalogue import catalogue_repository
from services.points.domain.model import Program
from shared.web.deps import (
    AdminCredential,
    AdminOrTillCaller,
    AdminScope,
    ClockDep,
    ConnectionDep,
    OperateScope,
    ReadOrTillCaller,
    ReadScope,
    RuntimeDep,
)

__all__ = [
    "AdminCredential",
    "AdminOrTillCaller",
    "AdminScope",
    "CampaignsDep",
    "CatalogueDep",
    "ClockDep",
    "LedgerDep",
    "OperateScope",
    "ProgramDep",
    "ReadOrTillCaller",
    "ReadScope",
    "RuntimeDep",
]


def get_ledger(conn: ConnectionDep) -> ports.LedgerRepository:
    return ledger_repository(conn)


def get_campaigns(conn: ConnectionDep) -> ports.CampaignRepository:
    return campaign_repository(conn)


def get_catalogue(conn: ConnectionDep) -> ports.CatalogueRepository:
    return catalogue_repository(conn)


LedgerDep = Annotated[ports.LedgerRepository, Depends(get_ledger)]
CatalogueDep = Annotated[ports.CatalogueRepository, Depends(get_catalogue)]
CampaignsDep = Annotated[ports.CampaignRepository, Depends(get_campaigns)]


def get_program(request: Request) -> Program:
    program: Program = request.app.state.program
    return program


ProgramDep = Annotated[Program, Depends(get_program)]
