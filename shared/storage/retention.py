"""Retention jobs: forget what is only kept to recognise a retry once no retry can come.

Each deletes in bounded chunks, one short transaction each, so a large backlog never holds
locks or bloats one huge transaction; the cut-off is `as_of - retention`, so running a job
again as of the same instant deletes nothing more."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

PURGE_INBOX = "purge-inbox"
PURGE_IDEMPOTENCY_KEYS = "purge-idempotency-keys"


@dataclass(frozen=True)
class PurgeOlderThan:
    """Deletes the rows of `table` whose `column` is before `as_of - retention`."""

    name: str
    table: sa.Table
    column: str
    retention: timedelta
    chunk_size: int = 5000

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]:
        cutoff = as_of - self.retention
        column = self.table.c[self.column]
        # ctid picks the physical rows of one chunk: the table's key is not needed, and the
        # index on `column` finds them.
        chunk: sa.Select[tuple[Any]] = (
            sa.select(sa.literal_column("ctid"))
            .select_from(self.table)
            .where(column < cutoff)
            .limit(self.chunk_size)
        )
        statement = self.table.delete().where(
            sa.literal_column("ctid") == sa.func.any(sa.func.array(chunk.scalar_subquery()))
        )
        deleted = 0
        while True:
            async with engine.begin() as conn:
                count = (await conn.execute(statement)).rowcount
            deleted += count
            if count < self.chunk_size:
                break
        return {"as_of": as_of.isoformat(), "cutoff": cutoff.isoformat(), "deleted": deleted}


def purge_inbox(inbox: sa.Table, retention: timedelta) -> PurgeOlderThan:
    """Inbox claims, by when they were received."""
    return PurgeOlderThan(PURGE_INBOX, inbox, "received_at", retention)


def purge_idempotency_keys(keys: sa.Table, retention: timedelta) -> PurgeOlderThan:
    """Kept answers to keyed calls, by when they were first answered."""
    return PurgeOlderThan(PURGE_IDEMPOTENCY_KEYS, keys, "created_at", retention)
