"""The tiers jobs: reviews that keep or lower tiers, and the warnings that come before.

Each works through the customers due in chunks, one short transaction per chunk (state,
history and outbox together), so a large backlog never holds its locks for long."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from services.tiers.adapters import tables
from services.tiers.adapters.repository import SqlTierRepository
from services.tiers.domain.model import Program
from services.tiers.handlers import ChunkDone, JobContext, review_tiers, warn_downgrades
from shared.clock import Clock
from shared.outbox import CollectingSink, Outbox

REVIEW_TIERS = "review-tiers"
WARN_DOWNGRADES = "warn-downgrades"

Chunk = Callable[[datetime, str, int, JobContext], Awaitable[ChunkDone]]


@dataclass(frozen=True)
class ChunkedTierJob:
    name: str
    chunk: Chunk
    events_name: str  # what the summary calls the events the chunks caused
    program: Program
    clock: Clock
    chunk_size: int = 500

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]:
        after, customers, caused = "", 0, 0
        while True:
            async with engine.begin() as conn:
                sink = CollectingSink()
                context = JobContext(
                    tiers=SqlTierRepository(conn),
                    sink=sink,
                    program=self.program,
                    now=self.clock.now(),
                )
                done = await self.chunk(as_of, after, self.chunk_size, context)
                await Outbox(conn, tables.outbox, self.clock).add_all(sink.events)
            customers += done.customers
            caused += done.events
            if done.last_customer_id is None or done.customers < self.chunk_size:
                break
            after = done.last_customer_id
        return {"as_of": as_of.isoformat(), "customers": customers, self.events_name: caused}


def tier_jobs(program: Program, clock: Clock) -> list[ChunkedTierJob]:
    """In the order `all` runs them: the warnings for reviews still ahead are given before
    the reviews now due move those customers' review dates."""
    return [
        ChunkedTierJob(WARN_DOWNGRADES, warn_downgrades, "warnings", program, clock),
        ChunkedTierJob(REVIEW_TIERS, review_tiers, "downgrades", program, clock),
    ]
