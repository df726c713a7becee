"""The transactional outbox: write the event with the state change, publish it afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import Clock
from shared.events import CloudEvent, Payload, derived_event_id, new_event

log = logging.getLogger(__name__)

PUBLISHED = Counter(
    "fedelta_outbox_published_total", "Events the outbox relay published", ["topic"]
)


class EventSink(Protocol):
    """Where handlers put the events they cause (the outbox; a list in unit tests)."""

    async def add(self, event: CloudEvent, *, key: str, topic: str | None = None) -> None: ...


class Outbox:
    """Writes events into the outbox table on the caller's connection and transaction."""

    def __init__(self, conn: AsyncConnection, table: sa.Table, clock: Clock) -> None:
        self._conn = conn
        self._table = table
        self._clock = clock

    async def add(self, event: CloudEvent, *, key: str, topic: str | None = None) -> None:
        await self._conn.execute(
            self._table.insert().values(
                event_id=event.id,
                topic=topic or event.topic,
                key=key,
                payload=event.model_dump(mode="json"),
                created_at=self._clock.now(),
            )
        )


async def emit(
    sink: EventSink,
    payload: Payload,
    *,
    source: str,
    customer_id: str,
    time: datetime,
    cause_id: str,
    purpose: str,
) -> CloudEvent:
    """Adds an event about a customer that `cause_id` led to: keyed by the customer, so it
    stays in order with their other events, and with an id derived from its cause, so a
    replay of the cause emits the same event again rather than a second one."""
    event = new_event(
        payload,
        source=source,
        subject=customer_id,
        time=time,
        event_id=derived_event_id(cause_id, purpose),
    )
    await sink.add(event, key=customer_id)
    return event


class CollectingSink:
    """An EventSink for unit tests: keeps what was added, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, CloudEvent]] = []

    async def add(self, event: CloudEvent, *, key: str, topic: str | None = None) -> None:
        self.events.append((topic or event.topic, key, event))


class BatchProducer(Protocol):
    async def send_batch(self, records: list[tuple[str, bytes, bytes]]) -> None: ...


class Producer(Protocol):
    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any: ...


@dataclass
class OutboxRelay:
    """Publishes outbox rows in order, then deletes them, one relay at a time per database.

    Rows are deleted only after Kafka acknowledged them (acks=all); a crash in between
    publishes them again, which the consumers' inboxes absorb. A transaction-scoped advisory
    lock keeps several instances of a service from publishing one customer's events out of order.
    """

    engine: AsyncEngine
    table: sa.Table
    producer: BatchProducer
    poll_interval: float = 0.1
    batch_size: int = 200
    name: str = "outbox-relay"

    def __post_init__(self) -> None:
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._lock_id = zlib.crc32(f"fedelta-outbox:{self.table.name}".encode())

    def notify(self) -> None:
        """Called after a commit that wrote to the outbox, to publish without waiting a poll."""
        self._wake.set()

    async def publish_pending(self) -> int:
        """One batch; returns how many events were published."""
        async with self.engine.begin() as conn:
            locked = await conn.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(self._lock_id)))
            if not locked:
                return 0
            rows = (
                await conn.execute(
                    sa.select(
                        self.table.c.id, self.table.c.topic, self.table.c.key, self.table.c.payload
                    )
                    .order_by(self.table.c.id)
                    .limit(self.batch_size)
                )
            ).all()
            if not rows:
                return 0
            await self.producer.send_batch(
                [
                    (row.topic, CloudEvent.model_validate(row.payload).to_bytes(), row.key.encode())
                    for row in rows
                ]
            )
            for row in rows:
                PUBLISHED.labels(row.topic).inc()
            await conn.execute(self.table.delete().where(self.table.c.id.in_([r.id for r in rows])))
            return len(rows)

    async def run(self) -> None:
        while not self._stopping.is_set():
            published = await self.publish_pending()
            if published >= self.batch_size:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()


async def count_pending(conn: AsyncConnection, table: sa.Table) -> int:
    return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
