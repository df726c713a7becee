"""The transactional outbox: write the event with the state change, publish it afterwards."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import Clock
from shared.messaging import tracing
from shared.messaging.events import (
    CloudEvent,
    Payload,
    derived_event_id,
    new_event,
)
from shared.storage.batches import texts, unpacked

if TYPE_CHECKING:
    from shared.messaging.consumer import BatchHandler

log = logging.getLogger(__name__)


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
        await self.add_all([(topic or event.topic, key, event)])

    async def add_tombstone(self, *, row_id: str, key: str, topic: str) -> None:
        """A record without a value for `key`, after the rows added before it: on a compacted
        topic, compaction then removes every record of the key. The table's payload column
        must be nullable (a migration of the service that sends tombstones); `row_id` fills
        the unique event_id column, derived from the cause like an event's id."""
        await self._conn.execute(
            self._table.insert().values(
                event_id=row_id,
                topic=topic,
                key=key,
                # SQL NULL, not the JSON null a None would be stored as.
                payload=sa.null(),
                created_at=self._clock.now(),
            )
        )

    async def add_all(self, events: Sequence[tuple[str, str, CloudEvent]]) -> None:
        """(topic, key, event) triples, in order, in one statement: one round trip, and one
        wake-up of the relay (its trigger fires per statement), whatever the count. Ids are
        assigned in the order given, which is the order the relay publishes in."""
        if not events:
            return
        table = self._table.name
        # An event a consumer's handler derived carries its cause's trace (tracing).
        stamped = [tracing.stamp(event) for _, _, event in events]
        await self._conn.execute(
            sa.text(
                f"INSERT INTO {table} (event_id, topic, key, payload, event_type, traceparent, "  # noqa: S608  # our table
                "created_at) SELECT added.event_id, added.topic, added.key, "
                "CAST(added.payload AS json), added.event_type, added.traceparent, :now "
                f"FROM unnest({unpacked('ids')}, {unpacked('topics')}, {unpacked('keys')}, "
                f"{unpacked('payloads')}, {unpacked('types')}, {unpacked('traceparents')}) "
                "WITH ORDINALITY "
                "AS added(event_id, topic, key, payload, event_type, traceparent, position) "
                "ORDER BY added.position"
            ),
            {
                "ids": texts([event.id for event in stamped]),
                "topics": texts([topic for topic, _, _ in events]),
                "keys": texts([key for _, key, _ in events]),
                "payloads": texts([event.model_dump_json() for event in stamped]),
                "types": texts([event.type for event in stamped]),
                "traceparents": texts([event.traceparent for event in stamped]),
                "now": self._clock.now(),
            },
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
    """An EventSink that keeps what was added, in order: what a batch handler emits while it
    applies a batch (written to the outbox in one statement at the end), and unit tests."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, CloudEvent]] = []

    async def add(self, event: CloudEvent, *, key: str, topic: str | None = None) -> None:
        self.events.append((topic or event.topic, key, event))


BatchApplier = Callable[[AsyncConnection, Sequence[CloudEvent], EventSink], Awaitable[None]]


def with_outbox(outbox: sa.Table, clock: Clock, apply: BatchApplier) -> BatchHandler:
    """A consumer's batch handler from a service's `apply(conn, batch, sink)`: the events the
    batch causes are collected while it is applied, then written to the outbox in one
    statement, in the consumer's transaction."""

    async def handle(conn: AsyncConnection, batch: Sequence[CloudEvent]) -> None:
        caused = CollectingSink()
        await apply(conn, batch, caused)
        await Outbox(conn, outbox, clock).add_all(caused.events)

    return handle
