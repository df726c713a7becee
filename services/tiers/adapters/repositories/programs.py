"""Which program a replay's switch made live: the `tier_replays` rows with a generation."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tiers import ports
from services.tiers.adapters import tables

# Conflicts with the EXCLUSIVE lock a replay's switch holds on `customers` (and with nothing
# the writers take among themselves). Once granted, any switch has committed or waits for us.
_WAIT_FOR_SWITCH = sa.text("LOCK TABLE customers IN ROW EXCLUSIVE MODE")


def switched_programs(conn: AsyncConnection) -> ports.SwitchedPrograms:
    return SqlSwitchedPrograms(conn)


class SqlSwitchedPrograms:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def latest(self) -> ports.SwitchedProgram | None:
        replays = tables.tier_replays
        row = (
            await self._conn.execute(
                sa.select(replays.c.generation, replays.c.replay_id, replays.c.switched_at)
                .where(replays.c.generation.is_not(None))
                .order_by(replays.c.generation.desc())
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        return ports.SwitchedProgram(row.generation, row.replay_id, row.switched_at)

    async def program_text(self, generation: int) -> str:
        replays = tables.tier_replays
        text: str = (
            await self._conn.execute(
                sa.select(replays.c.program).where(replays.c.generation == generation)
            )
        ).scalar_one()
        return text

    async def wait_for_switch(self) -> None:
        await self._conn.execute(_WAIT_FOR_SWITCH)
