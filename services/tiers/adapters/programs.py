"""The program in force: the one the latest switched replay made live, else the configured
file. Every tiers instance asks for it per consumer batch, job chunk and API request, so a
replay's switch is followed without a restart.

Cheap on the hot path: one indexed query for the newest switch's generation; the program's
text is read and parsed only when the generation has moved. Writers (consumer batches, job
chunks, overrides) first take a lock that waits for a switch in progress, then read the
generation: a batch that began before a switch committed never applies the old rules after
it (see `ProgramSource.for_writing`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.tiers.adapters import tables
from services.tiers.adapters.program_file import program_from_json
from services.tiers.domain.model import Program

log = logging.getLogger(__name__)

# Conflicts with the EXCLUSIVE lock a replay's switch holds on `customers` (and with nothing
# the writers take among themselves). Once granted, any switch has committed or waits for us.
_WAIT_FOR_SWITCH = sa.text("LOCK TABLE customers IN ROW EXCLUSIVE MODE")


@dataclass(frozen=True)
class SwitchedProgram:
    """A replay's switch: its generation rises by one with each switch."""

    generation: int
    replay_id: str
    switched_at: datetime


class SwitchedPrograms(Protocol):
    async def latest(self) -> SwitchedProgram | None:
        """The newest switch, if any replay ever switched."""
        ...

    async def program_text(self, generation: int) -> str:
        """The program that switch made live, as `program_file.program_json` wrote it."""
        ...


class SqlSwitchedPrograms:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def latest(self) -> SwitchedProgram | None:
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
        return SwitchedProgram(row.generation, row.replay_id, row.switched_at)

    async def program_text(self, generation: int) -> str:
        replays = tables.tier_replays
        text: str = (
            await self._conn.execute(
                sa.select(replays.c.program).where(replays.c.generation == generation)
            )
        ).scalar_one()
        return text


class ProgramSource:
    """Which program applies now. `configured` is the service's program file, in force
    until a replay switches; the switched program then wins until the next switch, whatever
    the file says (a file that differs is named in a warning)."""

    def __init__(self, configured: Program, configured_from: str = "the program file") -> None:
        self.configured = configured
        self._configured_from = configured_from
        self._in_force: tuple[SwitchedProgram, Program] | None = None
        self._unreadable: int | None = None  # a generation whose program could not be read

    async def current(self, conn: AsyncConnection) -> Program:
        """For reads (API answers): the program in force as of this statement."""
        return await self.resolve(SqlSwitchedPrograms(conn))

    async def for_writing(self, conn: AsyncConnection) -> Program:
        """For a transaction that writes tier state: waits for a switch in progress, then
        reads the program in force, which stays in force until this transaction ends."""
        await conn.execute(_WAIT_FOR_SWITCH)
        return await self.current(conn)

    async def announce(self, engine: AsyncEngine) -> Program:
        """Looks once (at start) and says which program is in force."""
        async with engine.connect() as conn:
            program = await self.current(conn)
        if self._in_force is None:
            log.info(
                "tiers program: %s is in force (no replay has switched)", self._configured_from
            )
        return program

    async def resolve(self, switched: SwitchedPrograms) -> Program:
        latest = await switched.latest()
        if latest is None:
            if self._in_force is not None:
                log.warning(
                    "tiers program: no switched replay is recorded any more; %s is in force",
                    self._configured_from,
                )
                self._in_force = None
            return self.configured
        if self._in_force is not None and self._in_force[0].generation == latest.generation:
            return self._in_force[1]
        if latest.generation == self._unreadable:
            return self._last_in_force()
        try:
            program = program_from_json(await switched.program_text(latest.generation))
        except ValueError as error:
            # Not a message's fault, nor a reason to stop: the program in force stays.
            self._unreadable = latest.generation
            log.error(
                "tiers program: the program of replay %s (generation %d) is unreadable (%s); "
                "keeping the one in force",
                latest.replay_id,
                latest.generation,
                type(error).__name__,
            )
            return self._last_in_force()
        self._in_force = (latest, program)
        self._say_in_force(latest, program)
        return program

    def _last_in_force(self) -> Program:
        return self._in_force[1] if self._in_force is not None else self.configured

    def _say_in_force(self, switched: SwitchedProgram, program: Program) -> None:
        if program == self.configured:
            log.info(
                "tiers program: replay %s (generation %d, switched at %s) is in force; "
                "%s is the same program",
                switched.replay_id,
                switched.generation,
                switched.switched_at.isoformat(),
                self._configured_from,
            )
            return
        log.warning(
            "tiers program: replay %s (generation %d, switched at %s) is in force, not %s, "
            "which differs; the file applies again only once a replay of it switches",
            switched.replay_id,
            switched.generation,
            switched.switched_at.isoformat(),
            self._configured_from,
        )
