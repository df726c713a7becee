"""Every dependency the tiers routers take, as Annotated aliases."""

from typing import Annotated

from fastapi import Depends, Request

from services.tiers.adapters.repository import SqlTierRepository
from services.tiers.domain.model import Program
from shared.http import AdminScope, ClockDep, ConnectionDep, ReadScope, RuntimeDep
from shared.idempotency import IdempotencyDep

__all__ = [
    "AdminScope",
    "ClockDep",
    "IdempotencyDep",
    "ProgramDep",
    "ReadScope",
    "RuntimeDep",
    "TiersDep",
]


def get_tiers(conn: ConnectionDep) -> SqlTierRepository:
    return SqlTierRepository(conn)


def get_program(request: Request) -> Program:
    program: Program = request.app.state.program
    return program


TiersDep = Annotated[SqlTierRepository, Depends(get_tiers)]
ProgramDep = Annotated[Program, Depends(get_program)]
