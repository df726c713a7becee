"""The insights job: `segments` recomputes the program's RFM quintiles as of the instant, in the
database, then re-evaluates every member against them in chunks (keyset pagination on the
member id), one short transaction per chunk holding only that chunk's member locks: the
segments entered and left go to the outbox with it. Memory stays bounded by the chunk, and a
run again as of the same instant finds nothing to change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.insights.adapters import tables
from services.insights.adapters.repositories.jobs import job_repository
from services.insights.domain.model import Rules
from services.insights.handlers import reevaluate
from shared.clock import Clock
from shared.messaging.outbox import CollectingSink, Outbox
from shared.storage.transactions import in_transaction

SEGMENTS = "segments"


@dataclass(frozen=True)
class _Chunk:
    members: int
    entered: int
    left: int
    last: str | None


@dataclass(frozen=True)
class SegmentsJob:
    clock: Clock
    rules: Rules
    chunk_size: int = 1000
    name: str = SEGMENTS

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]:
        async def quintiles(conn: AsyncConnection) -> int:
            found = await job_repository(conn).compute_breakpoints(as_of, self.rules.window)
            return found.members

        buyers = await in_transaction(engine, quintiles)
        summary = {"as_of": as_of.isoformat(), "buyers": buyers, "members": 0}
        summary |= {"entered": 0, "left": 0}
        after = ""
        while True:
            done = await in_transaction(engine, partial(self._chunk, as_of=as_of, after=after))
            for name in ("members", "entered", "left"):
                summary[name] += getattr(done, name)
            if done.last is None or done.members < self.chunk_size:
                return summary
            after = done.last

    async def _chunk(self, conn: AsyncConnection, *, as_of: datetime, after: str) -> _Chunk:
        repository = job_repository(conn)
        ids = await repository.member_ids_after(after, self.chunk_size)
        if not ids:
            return _Chunk(0, 0, 0, None)
        await repository.lock_members(ids)
        sink = CollectingSink()
        found = await reevaluate(ids, as_of, self.rules, repository, sink, now=self.clock.now())
        await Outbox(conn, tables.outbox, self.clock).add_all(sink.events)
        entered = sum(1 for change in found if change.entered)
        return _Chunk(len(ids), entered, len(found) - entered, ids[-1])
