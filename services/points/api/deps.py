"""Every dependency the points routers take, as Annotated aliases."""

from typing import Annotated

from fastapi import Depends

from services.points.adapters.repository import SqlLedgerRepository
from shared.http import AdminScope, ClockDep, ConnectionDep, ReadScope

__all__ = ["AdminScope", "ClockDep", "LedgerDep", "ReadScope"]


def get_ledger(conn: ConnectionDep) -> SqlLedgerRepository:
    return SqlLedgerRepository(conn)


LedgerDep = Annotated[SqlLedgerRepository, Depends(get_ledger)]
