"""Every dependency the tiers routers take, as Annotated aliases."""

from typing import Annotated

from fastapi import Depends, Request

from services.tiers.adapters.programs import ProgramSource
from services.tiers.adapters.repository import SqlTierRepository
from services.tiers.domain.model import Program
from shared.web.deps import AdminScope, ClockDep, ConnectionDep, ReadScope, RuntimeDep
from shared.web.idempotency import IdempotencyDep

__all__ = [
    "AdminScope",
    "ClockDep",
    "IdempotencyDep",
    "ProgramDep",
    "ProgramsDep",
    "ReadScope",
    "RuntimeDep",
    "TiersDep",
]


def get_tiers(conn: ConnectionDep) -> SqlTierRepository:
    return SqlTierRepository(conn)


def get_programs(request: Request) -> ProgramSource:
    programs: ProgramSource = request.app.state.programs
    return programs


ProgramsDep = Annotated[ProgramSource, Depends(get_programs)]


async def get_program(programs: ProgramsDep, conn: ConnectionDep) -> Program:
    """The program in force for a read (a call that writes asks `ProgramsDep` inside its
    own transaction)."""
    return await programs.current(conn)


TiersDep = Annotated[SqlTierRepository, Depends(get_tiers)]
ProgramDep = Annotated[Program, Depends(get_program)]
