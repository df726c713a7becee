"""Fakes of the consumer's and the relay's surroundings, defined once for every unit test: a
Kafka record, a dead-letter producer, a database with an inbox and savepoints, the consumer on
that database, aiokafka's consumer as the offsets and lag code see it, and a wake source.

The fake database keeps an inbox and the applied events, commits a transaction's changes only
when it ends without an error, and undoes a savepoint's changes when it fails, as PostgreSQL
does; the real database is the integration tests' business."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from shared.clock import FixedClock
from shared.messaging import events
from shared.messaging.consumer import BatchHandler, EventConsumer, Received, Subscription
from shared.messaging.events import CloudEvent
from shared.messaging.kafka import Producer
from shared.messaging.partners import KnownPartners
from shared.messaging.relay import WakeSource

NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
TOPIC = "fedelta.customers.v1"

# (topic, value, key, headers) of one record sent
Sent = tuple[str, bytes | None, bytes | None, dict[str, bytes]]


@dataclass
class Message:
    """A Kafka record as the consumer sees it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp: int | None = None  # ms since the epoch, when the record was written

    @classmethod
    def of(
        cls,
        event: CloudEvent,
        offset: int,
        *,
        topic: str = TOPIC,
        partition: int = 0,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Message:
        """The record of an event, keyed by its subject (the customer)."""
        key = event.subject.encode()
        return cls(topic, partition, offset, key, event.to_bytes(), headers or [])


class FakeProducer:
    """Records what is sent (the consumer's dead letters)."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        self.sent.append((topic, value, key, dict(headers or [])))

    def dead_lettered_offsets(self) -> list[int]:
        return [int(headers["fedelta-original-offset"]) for _, _, _, headers in self.sent]


@dataclass
class FakeConnection:
    inbox: set[str]
    applied: list[str] = field(default_factory=list)

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        saved = (set(self.inbox), list(self.applied))
        try:
            yield
        except BaseException:
            self.inbox, self.applied = saved  # a savepoint undone, as PostgreSQL does
            raise


@dataclass
class FakeDatabase:
    """Committed state, and failures scripted for whole transactions (outages at connect)."""

    inbox: set[str] = field(default_factory=set)
    applied: list[str] = field(default_factory=list)
    connect_failures: list[Exception] = field(default_factory=list)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[FakeConnection]:
        if self.connect_failures:
            raise self.connect_failures.pop(0)
        conn = FakeConnection(set(self.inbox), list(self.applied))
        yield conn
        self.inbox, self.applied = conn.inbox, conn.applied


class RecordingHandler:
    """A batch handler that applies each event by recording its id in the fake connection;
    fails as scripted per subject (customer id)."""

    def __init__(self, failures: dict[str, list[Exception]] | None = None) -> None:
        self.failures = failures or {}
        self.calls: list[list[str]] = []

    async def __call__(self, conn: Any, batch: Sequence[CloudEvent]) -> None:
        self.calls.append([event.id for event in batch])
        for event in batch:
            scripted = self.failures.get(event.subject)
            if scripted:
                raise scripted.pop(0)
            conn.applied.append(event.id)


class FakeInboxConsumer(EventConsumer):
    """The real consumer, its inbox claim made on the fake connection."""

    async def _claim(self, conn: Any, batch: Sequence[Received]) -> set[str]:
        new: set[str] = {r.event.id for r in batch} - conn.inbox
        conn.inbox |= new
        return new


class FakeKnownPartners(KnownPartners):
    """The partners topic as a list of partners, each appearing after as many reads of the
    topic as `after_reads` says (0: there from the start); no broker."""

    def __init__(self, after_reads: dict[str, int], *, wait_seconds: float = 0.05) -> None:
        super().__init__("127.0.0.1:1", client_id="fake", wait_seconds=wait_seconds)
        self.after_reads = after_reads
        self.reads = 0
        self._known |= {p for p, reads in after_reads.items() if reads == 0}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def read_to_end(self) -> None:
        self.reads += 1
        self._known |= {p for p, reads in self.after_reads.items() if reads <= self.reads}


def fake_consumer(
    handler: BatchHandler,
    *,
    database: FakeDatabase | None = None,
    dead_letters: Producer | None = None,
    service: str = "points",
    event_types: frozenset[str] = frozenset({events.CUSTOMER_ENROLLED}),
    max_attempts: int = 3,
    retry_backoff: float = 0.0001,
    outage_backoff_max: float = 0.001,
    partners: KnownPartners | None = None,
) -> FakeInboxConsumer:
    """The consumer of TOPIC on a fake database; it never polls, batches are handed to it."""
    return FakeInboxConsumer(
        service=service,
        subscription=Subscription(topics=(TOPIC,), event_types=event_types, handle=handler),
        bootstrap_servers="127.0.0.1:1",
        engine=database or FakeDatabase(),  # type: ignore[arg-type]  # what the consumer uses
        inbox_table=sa.Table("inbox", sa.MetaData()),
        dead_letters=dead_letters or FakeProducer(),
        clock=FixedClock(NOW),
        max_attempts=max_attempts,
        retry_backoff=retry_backoff,
        outage_backoff_max=outage_backoff_max,
        partners=partners,
    )


@dataclass(frozen=True)
class Partition:
    """A topic partition, as aiokafka's TopicPartition names one."""

    topic: str
    partition: int


class FakeKafkaConsumer:
    """aiokafka's consumer as the poll, commit and lag code see it: an assignment (the
    partitions given, and those with a position), commits (refused with `failure` if given),
    positions (the next offset to read) and highwaters; `log`'s records are polled from the
    positions, up to `max_records` a poll; `on_poll` (a test's to set) is called with a poll's
    number once its records are read (a rebalance then makes them stale); `seek` moves a
    position back or on."""

    def __init__(
        self,
        assigned: Iterable[Any] = (),
        *,
        failure: Exception | None = None,
        highwaters: dict[Any, int] | None = None,
        positions: dict[Any, int] | None = None,
        log: Sequence[Message] = (),
    ) -> None:
        self.positions = positions or {}
        self.assigned = set(assigned) | set(self.positions)
        self.failure = failure
        self.highwaters = highwaters or {}
        self.committed: list[dict[Any, int]] = []
        self.log = list(log)
        self.on_poll: Callable[[int], None] = lambda _number: None
        self.polls = 0
        self.seeks: list[tuple[Any, int]] = []

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[Any, list[Message]]:
        self.polls += 1
        await asyncio.sleep(0)
        polled: dict[Any, list[Message]] = {}
        for message in self.log:
            partition = Partition(message.topic, message.partition)
            if (
                partition in self.assigned
                and message.offset >= self.positions.get(partition, 0)
                and sum(map(len, polled.values())) < max_records
            ):
                polled.setdefault(partition, []).append(message)
        for partition, records in polled.items():
            self.positions[partition] = records[-1].offset + 1
        self.on_poll(self.polls)
        return polled

    def seek(self, partition: Any, offset: int) -> None:
        self.seeks.append((partition, offset))
        self.positions[partition] = offset

    def assignment(self) -> set[Any]:
        return self.assigned

    async def commit(self, offsets: dict[Any, int]) -> None:
        if self.failure is not None:
            raise self.failure
        self.committed.append(offsets)

    def highwater(self, partition: Any) -> int | None:
        return self.highwaters.get(partition)

    async def position(self, partition: Any) -> int:
        return self.positions[partition]


class FakeWakeSource:
    """Records when it listened; the test fires notifications and losses through it."""

    def __init__(self, log: list[str], *, failures: int = 0) -> None:
        self.log = log
        self.failures = failures
        self.on_wake: Callable[[], None] = lambda: None
        self.on_lost: Callable[[], None] = lambda: None
        self.listening = False
        self.closed = False

    async def start(self, on_wake: Callable[[], None], on_lost: Callable[[], None]) -> None:
        if self.failures:
            self.failures -= 1
            self.log.append("listen failed")
            raise ConnectionRefusedError("the database refused a connection")
        self.on_wake, self.on_lost = on_wake, on_lost
        self.listening = True
        self.log.append("listen")

    def alive(self) -> bool:
        return self.listening

    async def close(self) -> None:
        self.listening = False
        self.closed = True

    def lose_connection(self) -> None:
        self.listening = False
        self.on_lost()


def _implements_the_ports(producer: FakeProducer, wakes: FakeWakeSource) -> None:
    """Checked by mypy, never called: each fake implements the port the code under test takes."""
    _producer: Producer = producer
    _wake_source: WakeSource = wakes
    _handler: BatchHandler = RecordingHandler()
