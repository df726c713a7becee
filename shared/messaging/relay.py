"""The outbox relay: publishes what services wrote to their outbox, in order, then deletes it."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import Clock, SystemClock
from shared.messaging.kafka import (
    CONTENT_TYPE_HEADER,
    EVENT_TYPE_HEADER,
    STRUCTURED_CONTENT_TYPE,
    TRACEPARENT_HEADER,
    BatchProducer,
    Headers,
)
from shared.observability.metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE_SECONDS, OUTBOX_PUBLISHED
from shared.storage.locks import lock_name, try_lock_for_transaction
from shared.storage.migrations import OUTBOX_CHANNEL

log = logging.getLogger(__name__)


class WakeSource(Protocol):
    """Tells the relay that rows were committed to the outbox (PostgreSQL LISTEN in
    production, a fake in unit tests)."""

    async def start(self, on_wake: Callable[[], None], on_lost: Callable[[], None]) -> None:
        """Listening once this returns; `on_lost` is called if listening stops by itself."""

    def alive(self) -> bool: ...

    async def close(self) -> None: ...


class PostgresWakeups:
    """LISTENs on the outbox channel on a connection of its own (not the pool's: a pooled
    connection is shared, and LISTEN belongs to a session). The outbox trigger notifies at
    commit, so every transaction that wrote rows wakes the relay, whichever process made it."""

    def __init__(self, dsn: str, channel: str = OUTBOX_CHANNEL) -> None:
        self._dsn = dsn
        self._channel = channel
        self._conn: Any = None
        self._on_terminated: Callable[[Any], None] = lambda _conn: None

    @classmethod
    def for_engine(cls, engine: AsyncEngine) -> PostgresWakeups:
        """The engine's database, reached by asyncpg itself (its URL with the plain driver name)."""
        url = engine.url.set(drivername="postgresql")
        return cls(url.render_as_string(hide_password=False))

    async def start(self, on_wake: Callable[[], None], on_lost: Callable[[], None]) -> None:
        await self.close()
        conn = await asyncpg.connect(self._dsn, timeout=10)
        self._on_terminated = lambda _conn: on_lost()
        try:
            conn.add_termination_listener(self._on_terminated)
            await conn.add_listener(self._channel, lambda *_notification: on_wake())
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn

    def alive(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None or conn.is_closed():
            return
        # Closed on purpose: not a loss to report.
        conn.remove_termination_listener(self._on_terminated)
        try:
            await conn.close(timeout=2)
        except Exception:  # a dead connection is being dropped anyway
            conn.terminate()


@dataclass
class OutboxRelay:
    """Publishes outbox rows in order, then deletes them, one relay at a time per database.

    Rows are deleted only after Kafka acknowledged them (acks=all); a crash in between
    publishes them again, which the consumers' inboxes absorb. A transaction-scoped advisory
    lock keeps several instances of a service from publishing one customer's events out of order.

    It wakes when a transaction that wrote to the outbox commits (`wake_source`, LISTEN), when
    this process says so (`notify`), and every `poll_interval` seconds in case both were missed.
    A relay that found the lock held by another one leaves the wake-ups to that one (which
    LISTENs too, and looks again after its batch) and only polls, to take over should it go:
    otherwise every instance would open a transaction on every commit only to find the lock
    taken (a tenth of a busy ingest worker's time, with two workers).
    """

    engine: AsyncEngine
    table: sa.Table
    producer: BatchProducer
    poll_interval: float = 1.0
    batch_size: int = 1000
    name: str = "outbox-relay"
    wake_source: WakeSource | None = None
    clock: Clock = field(default_factory=SystemClock)

    def __post_init__(self) -> None:
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._listening = False
        self._listen_again_at = 0.0
        self._held_elsewhere = False
        self._lock_name = lock_name("outbox-relay", self.table.name)
        # The payload as it was written: the consumers validate what they read, so the relay
        # sends the text as it is instead of parsing and re-serialising every event.
        self._take = (
            sa.select(
                self.table.c.id,
                self.table.c.topic,
                self.table.c.key,
                sa.cast(self.table.c.payload, sa.Text).label("payload"),
                self.table.c.event_type,
                self.table.c.traceparent,
            )
            .order_by(self.table.c.id)
            .limit(sa.bindparam("limit"))
        )
        # Index lookups only, whatever the backlog: the oldest row after those just published
        # (their deleted index entries would each cost a visit of the row) and the newest id.
        self._backlog = (
            sa.select(
                self.table.c.id,
                self.table.c.created_at,
                sa.select(sa.func.max(self.table.c.id)).scalar_subquery().label("newest"),
            )
            .where(self.table.c.id > sa.bindparam("after", type_=sa.BigInteger))
            .order_by(self.table.c.id)
            .limit(1)
        )
        self._delete = self.table.delete().where(
            self.table.c.id == sa.func.any(sa.bindparam("ids", type_=ARRAY(sa.BigInteger)))
        )

    def notify(self) -> None:
        """Called after a commit that wrote to the outbox, to publish without waiting a poll."""
        self._wake.set()

    async def publish_pending(self) -> int:
        """One batch; returns how many events were published."""
        async with self.engine.begin() as conn:
            locked = await try_lock_for_transaction(conn, self._lock_name)
            self._held_elsewhere = not locked
            if not locked:
                return 0
            rows = (await conn.execute(self._take, {"limit": self.batch_size})).all()
            if not rows:
                await self._measure_backlog(None)
                return 0
            await self.producer.send_batch(
                [
                    (
                        row.topic,
                        row.payload.encode(),
                        row.key.encode(),
                        [
                            (CONTENT_TYPE_HEADER, STRUCTURED_CONTENT_TYPE),
                            (EVENT_TYPE_HEADER, row.event_type.encode()),
                            *_trace_headers(row.traceparent),
                        ],
                    )
                    if row.payload is not None
                    else (row.topic, None, row.key.encode(), [])  # a tombstone
                    for row in rows
                ]
            )
            # By id, not `id <= last`: a row with a smaller id may commit after this read.
            await conn.execute(self._delete, {"ids": [row.id for row in rows]})
            await self._measure_backlog(conn, after=rows[-1].id)
        for topic, count in collections.Counter(row.topic for row in rows).items():
            OUTBOX_PUBLISHED.labels(topic).inc(count)
        return len(rows)

    async def _measure_backlog(self, conn: AsyncConnection | None, *, after: int = 0) -> None:
        """Sets the backlog gauges after a cycle: one cheap query (none when the cycle found
        the outbox empty), not one per row. Rows up to `after` were published by the cycle; a
        row of a smaller id committed since is published by the next one."""
        oldest = (
            None if conn is None else (await conn.execute(self._backlog, {"after": after})).first()
        )
        if oldest is None:
            backlog, age = 0, 0.0
        else:
            backlog = oldest.newest - oldest.id + 1
            age = max(0.0, (self.clock.now() - oldest.created_at).total_seconds())
        OUTBOX_BACKLOG.labels(self.table.name).set(backlog)
        OUTBOX_OLDEST_AGE_SECONDS.labels(self.table.name).set(age)

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                if self.wake_source is not None and not (
                    self._listening and self.wake_source.alive()
                ):
                    # Before the poll that follows: a commit after this is notified, one
                    # before it (while nobody listened) is found by that poll.
                    await self._listen(self.wake_source)
                # Cleared before reading: a commit notified while this batch is published
                # leaves the event set, and the wait below returns at once.
                self._wake.clear()
                published = await self.publish_pending()
                if published >= self.batch_size:
                    continue
                # Held elsewhere: that relay publishes what is committed; this one polls.
                wake = self._stopping if self._held_elsewhere else self._wake
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=self.poll_interval)
        finally:
            self._listening = False
            if self.wake_source is not None:
                await self.wake_source.close()

    async def _listen(self, wake_source: WakeSource) -> None:
        """Listens (again); when that fails, the relay carries on with the fallback poll and
        tries again at a later round, no sooner than one poll interval after."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._listen_again_at:
            return
        # Set first: a loss reported while `start` is still running must not be overwritten.
        self._listening = True
        try:
            await wake_source.start(self._wake.set, self._on_listener_lost)
        except Exception as error:
            self._listening = False
            self._listen_again_at = loop.time() + self.poll_interval
            log.warning("%s cannot LISTEN (%s); polling meanwhile", self.name, type(error).__name__)
        except BaseException:
            self._listening = False
            raise

    def _on_listener_lost(self) -> None:
        if not self._stopping.is_set():
            log.warning("%s lost its LISTEN connection; listening again", self.name)
        self._listening = False
        self._wake.set()

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()


def _trace_headers(traceparent: str | None) -> Headers:
    """The event's W3C trace context in the record's headers too, where Kafka tooling and
    OpenTelemetry instrumentations look for it (the envelope's attribute stays the source)."""
    return [] if traceparent is None else [(TRACEPARENT_HEADER, traceparent.encode())]


async def count_pending(conn: AsyncConnection, table: sa.Table) -> int:
    return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
