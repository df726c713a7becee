"""The replay after a rule change: every customer's tier rebuilt under a new program from the
purchase history kept in Kafka, then made live in one transaction.

1. Load. The purchases and customers topics are read from their earliest offset by a
   reader of their own (partitions assigned, no consumer group: the live group's offsets are
   left alone) into the replay tables. Each poll is one transaction that stores its records
   and the read positions together, so a crashed replay resumes exactly where it stopped.
2. Compute. Each customer the load touched has their tier rebuilt from their whole history
   (`domain.rebuild`), a chunk of customers per transaction.
3. Switch. Once a load pass finds little new, one transaction locks the live tables against
   writers (the live consumer, the jobs and overrides wait; reads go on), reads the end
   offsets, loads and computes the tail up to them, and makes the rebuilt state live: tiers
   that differ are written with a history row and a `tier.changed` in the outbox, and the
   activity the live consumer has not applied yet is copied, so that it counts once when
   the live consumer reaches it. The replay is then never behind the live state: whatever
   the live consumer applied came from offsets below the ends read under the lock.

The live service keeps consuming and answering throughout, on the live tables.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.tiers.adapters import tables
from services.tiers.adapters.program_file import program_json
from services.tiers.adapters.replay_reader import kafka_replay_reader
from services.tiers.adapters.repositories.replay import replay_runs, replay_store
from services.tiers.domain.model import CustomerTier, Program, TierChange
from services.tiers.domain.rebuild import attribute_refunds, rebuild_customer, switch_change
from services.tiers.handlers import announce_replay_change
from services.tiers.ports import (
    Partition,
    Polled,
    ReplayReader,
    ReplayStore,
    RunningReplay,
)
from shared.clock import Clock
from shared.messaging import topics
from shared.messaging.kafka import KafkaConnection
from shared.messaging.outbox import CollectingSink, Outbox
from shared.storage.locks import lock_name, try_lock_for_session, unlock
from shared.storage.transactions import in_transaction

REPLAYED_TOPICS = (topics.CUSTOMERS, topics.PURCHASES)
# Held for the whole command: two replay commands at once would read the topics twice over.
_REPLAY_LOCK = lock_name("tiers", "replay")
# Empty polls in a row after which the offsets left below the ends are taken to hold nothing.
_IDLE_POLLS = 30

OpenReader = Callable[
    [str | KafkaConnection, Program, int], AbstractAsyncContextManager[ReplayReader]
]


class ReplayRefused(Exception):
    """The replay cannot start as asked; the message says what to do."""


def program_text(program: Program) -> str:
    """The program as canonical JSON: what a resumed replay must be replaying again, and
    what the live service reads back once the switch has made it the program in force."""
    return program_json(program)


@dataclass(frozen=True)
class ReplayResult:
    replay_id: str
    switched: bool  # False: stopped before the switch (run again to resume)
    events: int
    changed: int  # customers whose tier the switch changed (and announced)


@dataclass(frozen=True)
class _Begun:
    replay_id: str
    resumed: RunningReplay | None  # the unfinished replay of this program, resumed
    abandoned: str | None  # the unfinished replay --fresh abandoned


@dataclass
class Replay:
    engine: AsyncEngine
    bootstrap_servers: str | KafkaConnection
    program: Program
    clock: Clock
    report: Callable[[str], None] = print
    batch_max_records: int = 1000
    chunk_size: int = 500
    # A load pass that found fewer new records than this is close enough to switch: the
    # switch loads the rest with the live tables locked.
    switch_below: int = 1000
    progress_every_seconds: float = 2.0
    open_reader: OpenReader = kafka_replay_reader

    async def run(
        self, *, fresh: bool = False, stop_after_polls: int | None = None
    ) -> ReplayResult:
        """Starts a replay of this program, or resumes the one of it left unfinished.
        `fresh` abandons an unfinished replay first (one of another program is otherwise
        refused). `stop_after_polls` stops after that many loaded polls without switching,
        as a crash would (for tests)."""
        async with self.engine.connect() as guard:
            if not await try_lock_for_session(guard, _REPLAY_LOCK):
                raise ReplayRefused("another replay command is running")
            await guard.commit()
            try:
                return await self._run(fresh, stop_after_polls)
            finally:
                await unlock(guard, _REPLAY_LOCK)
                await guard.commit()

    async def _run(self, fresh: bool, stop_after_polls: int | None) -> ReplayResult:
        replay_id = await self._begin(fresh)
        opened = self.open_reader(self.bootstrap_servers, self.program, self.batch_max_records)
        async with opened as reader:
            await self._assign(reader, replay_id)
            if not await self._load(reader, replay_id, stop_after_polls):
                self.report(f"replay {replay_id}: stopped before the switch; run it again")
                return await self._result(replay_id, switched=False)
            changed = await self._switch(reader, replay_id)
        await self._clean_up()
        self.report(f"replay {replay_id}: switched; {changed} customer(s) changed tier")
        return await self._result(replay_id, switched=True)

    # -- starting or resuming ---------------------------------------------------------------

    async def _begin(self, fresh: bool) -> str:
        begun = await in_transaction(self.engine, lambda conn: self._begin_in(conn, fresh))
        if begun.resumed is not None:
            self.report(
                f"replay {begun.replay_id}: resuming ({begun.resumed.events} events loaded)"
            )
            return begun.replay_id
        if begun.abandoned is not None:
            self.report(f"replay {begun.abandoned}: abandoned")
        await self._clean_up()
        self.report(f"replay {begun.replay_id}: started")
        return begun.replay_id

    async def _begin_in(self, conn: AsyncConnection, fresh: bool) -> _Begun:
        wanted = program_text(self.program)
        runs = replay_runs(conn)
        running = await runs.running()
        if running is not None and running.program == wanted and not fresh:
            return _Begun(running.replay_id, resumed=running, abandoned=None)
        if running is not None and not fresh:
            raise ReplayRefused(
                f"replay {running.replay_id} of another program is unfinished: run it "
                "again with that program to finish it, or pass --fresh to abandon it"
            )
        if running is not None:
            await runs.abandon(running.replay_id)
        replay_id = f"{self.clock.now():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        await runs.start(replay_id, wanted, self.clock.now())
        return _Begun(
            replay_id, resumed=None, abandoned=None if running is None else running.replay_id
        )

    async def _clean_up(self) -> None:
        """Drops the working rows of replays that are over (switched or abandoned)."""
        await in_transaction(self.engine, lambda conn: replay_runs(conn).clean_up())

    async def _assign(self, reader: ReplayReader, replay_id: str) -> None:
        """Every partition of the replayed topics, read from where this replay stopped, else
        from its beginning."""
        beginnings = await reader.assign(REPLAYED_TOPICS)
        for topic in REPLAYED_TOPICS:
            if not any(partition.topic == topic for partition in beginnings):
                raise ReplayRefused(f"topic {topic} not found")
        async with self.engine.connect() as conn:
            stored = await replay_store(conn, replay_id).offsets()
        reader.seek({p: stored.get(p, beginning) for p, beginning in beginnings.items()})
        for p, beginning in beginnings.items():
            if p.topic == topics.PURCHASES and beginning > 0:
                self.report(
                    f"warning: {p.topic}[{p.partition}] begins at offset {beginning}: "
                    "older purchases were deleted by retention and are not replayed"
                )

    # -- loading and computing --------------------------------------------------------------

    async def _load(
        self, reader: ReplayReader, replay_id: str, stop_after_polls: int | None
    ) -> bool:
        """Load passes, each followed by the rebuild of what it touched, until one finds
        little new (True: time to switch) or `stop_after_polls` is reached (False)."""
        polls = 0
        while True:
            ends = await reader.end_offsets()
            loaded, polls = await self._load_pass(reader, replay_id, ends, polls, stop_after_polls)
            if stop_after_polls is not None and polls >= stop_after_polls:
                return False
            await self._compute_all(replay_id)
            if loaded < self.switch_below:
                return True

    async def _load_pass(
        self,
        reader: ReplayReader,
        replay_id: str,
        ends: dict[Partition, int],
        polls: int,
        stop_after_polls: int | None,
    ) -> tuple[int, int]:
        """Loads up to the end offsets, one transaction per poll; returns the records read
        and the polls made so far."""
        read, last_report, idle = 0, 0.0, 0
        while not await _caught_up(reader, ends):
            if stop_after_polls is not None and polls >= stop_after_polls:
                break
            polled = await reader.poll()
            idle = 0 if polled.records else idle + 1
            if idle >= _IDLE_POLLS:
                # Nothing left below the end offsets: the offsets in between hold no record.
                self.report(f"replay {replay_id}: no records before the end offsets; going on")
                break
            await self._save_poll(replay_id, polled)
            read += polled.records
            polls += 1 if polled.records else 0
            if time.monotonic() - last_report >= self.progress_every_seconds:
                last_report = time.monotonic()
                await self._report_progress(reader, replay_id, ends)
        await self._report_progress(reader, replay_id, ends)
        return read, polls

    async def _save_poll(self, replay_id: str, polled: Polled) -> None:
        """The poll's records and the read positions after it, in one transaction."""

        async def save(conn: AsyncConnection) -> None:
            await replay_store(conn, replay_id).save_batch(polled.batch, polled.positions)

        await in_transaction(self.engine, save)

    async def _report_progress(
        self, reader: ReplayReader, replay_id: str, ends: dict[Partition, int]
    ) -> None:
        positions = await reader.positions()
        parts = []
        for topic in REPLAYED_TOPICS:
            done = sum(positions[p] for p in ends if p.topic == topic)
            end = sum(offset for p, offset in ends.items() if p.topic == topic)
            parts.append(f"{topic} {done}/{end}")
        async with self.engine.connect() as conn:
            counts = await replay_runs(conn).counts(replay_id)
        self.report(
            f"replay {replay_id}: {counts.events} events loaded ({counts.skipped} skipped); "
            f"offsets {', '.join(parts)}"
        )

    async def _compute_all(self, replay_id: str) -> None:
        """Rebuilds every customer the load touched, a chunk per transaction."""
        after, computed = "", 0
        while True:
            done, last = await self._compute_next(replay_id, after)
            computed += done
            if last is None:
                break
            after = last
        if computed:
            self.report(f"replay {replay_id}: {computed} customer tier(s) rebuilt")

    async def _compute_next(self, replay_id: str, after: str) -> tuple[int, str | None]:
        async def compute(conn: AsyncConnection) -> tuple[int, str | None]:
            return await self._compute_chunk(replay_store(conn, replay_id), after)

        return await in_transaction(self.engine, compute)

    async def _compute_chunk(self, store: ReplayStore, after: str) -> tuple[int, str | None]:
        """Rebuilds the next chunk of customers due after `after`: how many, and the last."""
        as_of = self.clock.now()
        due = await store.lock_to_compute(as_of, after=after, limit=self.chunk_size)
        if not due:
            return 0, None
        histories = await store.histories(list(due))
        rebuilt: list[CustomerTier] = []
        unknown: list[str] = []
        for customer_id, enrolled_at in due.items():
            activities, refunded = histories[customer_id]
            outcome = rebuild_customer(
                self.program,
                customer_id,
                enrolled_at=enrolled_at,
                activities=attribute_refunds(activities, refunded),
                refunds=refunded,
                as_of=as_of,
            )
            if outcome is None:
                unknown.append(customer_id)
            else:
                rebuilt.append(outcome.customer)
        await store.save_tiers(rebuilt, unknown)
        return len(due), max(due)

    # -- the switch -------------------------------------------------------------------------

    async def _switch(self, reader: ReplayReader, replay_id: str) -> int:
        """Loads and rebuilds the tail and makes the rebuilt state live, in one transaction;
        the number of customers whose tier changed."""

        async def switch(conn: AsyncConnection) -> int:
            return await self._switch_in(conn, reader, replay_id)

        return await in_transaction(self.engine, switch)

    async def _switch_in(self, conn: AsyncConnection, reader: ReplayReader, replay_id: str) -> int:
        store = replay_store(conn, replay_id)
        await store.lock_live()
        # Under the lock, no referral qualifies any more until the switch commits.
        await store.mark_referrers_stale()
        # From the positions stored with what was loaded: where the reader stands already,
        # unless this is a second attempt after a lost connection, whose first attempt's
        # records were rolled back with it.
        reader.seek(await store.offsets())
        # Read under the lock: everything the live consumer has applied lies below.
        ends = await reader.end_offsets()
        await self._load_tail(reader, store, ends)
        after = ""
        while (last := (await self._compute_chunk(store, after))[1]) is not None:
            after = last
        now = self.clock.now()
        changes = await self._make_live(conn, store, replay_id, now)
        await replay_runs(conn).mark_switched(replay_id, now, len(changes))
        return len(changes)

    async def _load_tail(
        self, reader: ReplayReader, store: ReplayStore, ends: dict[Partition, int]
    ) -> None:
        idle = 0
        while idle < _IDLE_POLLS and not await _caught_up(reader, ends):
            polled = await reader.poll()
            idle = 0 if polled.records else idle + 1
            await store.save_batch(polled.batch, polled.positions)

    async def _make_live(
        self, conn: AsyncConnection, store: ReplayStore, replay_id: str, now: datetime
    ) -> list[TierChange]:
        """The rebuilt tiers that differ written over the live ones; a history row and a
        tier.changed for each customer whose tier changed."""
        differing = await store.differing(now)
        changes: list[TierChange] = []
        for rebuilt, old_tier in differing:
            change = switch_change(
                self.program, old_tier or self.program.entry_tier.name, rebuilt, now
            )
            if change is not None:
                changes.append(change)
        await store.make_live([rebuilt for rebuilt, _ in differing], changes)
        sink = CollectingSink()
        for change in changes:
            await announce_replay_change(change, replay_id, sink, now)
        await Outbox(conn, tables.outbox, self.clock).add_all(sink.events)
        return changes

    async def _result(self, replay_id: str, *, switched: bool) -> ReplayResult:
        async with self.engine.connect() as conn:
            counts = await replay_runs(conn).counts(replay_id)
        return ReplayResult(replay_id, switched, counts.events, counts.changed)


async def _caught_up(reader: ReplayReader, ends: dict[Partition, int]) -> bool:
    positions = await reader.positions()
    return all(positions[partition] >= end for partition, end in ends.items())
