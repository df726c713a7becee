"""Every dependency the tiers routers take, as Annotated aliases."""

from typing import Annotated

from fastapi import Depends, Request

from services.tiers.programs import ProgramSource
from shared.web.deps import AdminCredential, AdminScope, ClockDep, ReadScope, RuntimeDep
from shared.web.idempotency import IdempotencyDep

__all__ = [
    "AdminCredential",
    "AdminScope",
    "ClockDep",
    "IdempotencyDep",
    "ProgramsDep",
    "ReadScope",
    "RuntimeDep",
]


async def get_programs(request: Request) -> ProgramSource:
    programs: ProgramSource = request.app.state.programs
    return programs


# Which program is in force: a use case asks it on its own connection (a call that writes,
# inside its own transaction).
ProgramsDep = Annotated[ProgramSource, Depends(get_programs)]
