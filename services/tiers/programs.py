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

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.tiers.adapters.program_file import program_from_json
from services.tiers.adapters.repositories.programs import switched_programs
from services.tiers.domain.model import Program
from services.tiers.ports import SwitchedProgram, SwitchedPrograms

log = logging.getLogger(__name__)


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
        return await self.resolve(switched_programs(conn))

    async def for_writing(self, conn: AsyncConnection) -> Program:
        """For a transaction that writes tier state: waits for a switch in progress, then
        reads the program in force, which stays in force until this transaction ends."""
        switched = switched_programs(conn)
        await switched.wait_for_switch()
        return await self.resolve(switched)

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
