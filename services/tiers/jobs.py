"""The tiers jobs: the referrals that qualify once their return window has passed (and the
upgrades they bring), reviews that keep or lower tiers, and the warnings that come before.

Each works through the customers due in chunks, one short transaction per chunk (state,
history and outbox together), so a large backlog never holds its locks for long."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.tiers.adapters import tables
from services.tiers.adapters.repositories.jobs import job_repository
from services.tiers.handlers import (
    ChunkDone,
    JobContext,
    qualify_referrals,
    review_tiers,
    warn_downgrades,
)
from services.tiers.programs import ProgramSource
from shared.clock import Clock
from shared.messaging.outbox import CollectingSink, Outbox
from shared.storage.transactions import in_transaction

REVIEW_TIERS = "review-tiers"
WARN_DOWNGRADES = "warn-downgrades"
QUALIFY_REFERRALS = "qualify-referrals"

Chunk = Callable[[datetime, str, int, JobContext], Awaitable[ChunkDone]]


@dataclass(frozen=True)
class ChunkedTierJob:
    name: str
    chunk: Chunk
    events_name: str  # what the summary calls the events the chunks caused
    programs: ProgramSource
    clock: Clock
    chunk_size: int = 1000

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]:
        after, customers, caused = "", 0, 0
        while True:
            done = await self._next_chunk(engine, as_of, after)
            customers += done.customers
            caused += done.events
            if done.last_customer_id is None or done.customers < self.chunk_size:
                break
            after = done.last_customer_id
        return {"as_of": as_of.isoformat(), "customers": customers, self.events_name: caused}

    async def _next_chunk(self, engine: AsyncEngine, as_of: datetime, after: str) -> ChunkDone:
        """The chunk after `after`, in one transaction: state, history and outbox together."""

        async def chunk(conn: AsyncConnection) -> ChunkDone:
            # Per chunk: a replay switched meanwhile applies from the next chunk on.
            program = await self.programs.for_writing(conn)
            sink = CollectingSink()
            context = JobContext(
                tiers=job_repository(conn), sink=sink, program=program, now=self.clock.now()
            )
            done = await self.chunk(as_of, after, self.chunk_size, context)
            await Outbox(conn, tables.outbox, self.clock).add_all(sink.events)
            return done

        return await in_transaction(engine, chunk)


def tier_jobs(programs: ProgramSource, clock: Clock) -> list[ChunkedTierJob]:
    """In the order `all` runs them: referrals qualify first (an upgrade is never late, and
    the warnings and reviews count them); the warnings for reviews still ahead are given
    before the reviews now due move those customers' review dates."""
    return [
        ChunkedTierJob(QUALIFY_REFERRALS, qualify_referrals, "upgrades", programs, clock),
        ChunkedTierJob(WARN_DOWNGRADES, warn_downgrades, "warnings", programs, clock),
        ChunkedTierJob(REVIEW_TIERS, review_tiers, "downgrades", programs, clock),
    ]
