"""The batched consumer on the real PostgreSQL and Kafka: poison isolated in the middle of a
batch, and every kind of database outage waited out, then applied exactly once.

The effect under test is one row per enrolment in the points database's `customers` table,
applied set-based by a minimal batch handler, so that what is proven here is the consumer's
own behaviour, whatever the services' rules.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import SystemClock
from shared.messaging import events
from shared.messaging.consumer import EventConsumer, Subscription
from shared.messaging.events import CloudEvent, new_event
from shared.messaging.kafka import ResilientProducer
from shared.messaging.topics import dead_letter_topic
from shared.observability.metrics import CONSUMER_DATABASE_WAITS
from shared.storage.db import create_engine, define_inbox, insert_many
from tests.support.kafka import read_all
from tests.support.polling import eventually
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
POISON = "-poison"
metadata = sa.MetaData()
inbox = define_inbox(metadata)
customers = sa.Table(  # as the points migrations made it
    "customers",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("partner_id", sa.Text, nullable=False),
    sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
)


@pytest.fixture(scope="module")
async def engine(stack: Stack) -> AsyncIterator[AsyncEngine]:
    stack.migrate("points")
    engine = create_engine(stack.database_url("points"), pool_size=4)
    yield engine
    await engine.dispose()


async def record_enrolments(conn: AsyncConnection, batch: Sequence[CloudEvent]) -> None:
    enrolled = [event.data_as(events.CustomerEnrolled) for event in batch]
    if any(e.customer_id.endswith(POISON) for e in enrolled):
        # A statement the healthy database refuses for this event's data (22012, a data
        # exception): the message's fault, as a value out of a column's range would be.
        await conn.execute(sa.text("SELECT 1 / 0"))
    await insert_many(
        conn,
        customers,
        [
            dict(customer_id=e.customer_id, partner_id=e.partner_id, enrolled_at=e.enrolled_at)
            for e in enrolled
        ],
    )


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.sent.append((topic, key))


class Message:
    def __init__(self, topic: str, offset: int, event: CloudEvent) -> None:
        self.topic, self.partition, self.offset = topic, 0, offset
        self.key: bytes | None = event.subject.encode()
        self.value: bytes | None = event.to_bytes()
        self.headers: list[tuple[str, bytes]] = []


def enrolment(customer_id: str, *, key: str | None = None) -> CloudEvent:
    return new_event(
        events.CustomerEnrolled(customer_id=customer_id, partner_id="demo", enrolled_at=NOW),
        source="ingest/demo",
        subject=key or customer_id,
        time=NOW,
    )


def consumer_on(
    engine: AsyncEngine, handle: Callable[[AsyncConnection, Sequence[CloudEvent]], Awaitable[None]]
) -> tuple[EventConsumer, RecordingProducer]:
    producer = RecordingProducer()
    built = EventConsumer(
        service=f"core-{uuid.uuid4().hex[:8]}",
        subscription=Subscription(
            topics=("unused",), event_types=frozenset({events.CUSTOMER_ENROLLED}), handle=handle
        ),
        bootstrap_servers="127.0.0.1:1",
        engine=engine,
        inbox_table=inbox,
        dead_letters=producer,
        clock=SystemClock(),
        max_attempts=2,
        retry_backoff=0.01,
        outage_backoff_max=0.05,
    )
    return built, producer


async def rows_for(engine: AsyncEngine, customer_ids: list[str]) -> dict[str, int]:
    async with engine.connect() as conn:
        found = await conn.execute(
            sa.select(customers.c.customer_id, sa.func.count())
            .where(customers.c.customer_id.in_(customer_ids))
            .group_by(customers.c.customer_id)
        )
        return {customer_id: count for customer_id, count in found}


def sql(statement: str) -> Callable[[AsyncConnection], Awaitable[Any]]:
    async def run(conn: AsyncConnection) -> Any:
        return await conn.execute(sa.text(statement))

    return run


def raised(sqlstate: str) -> Callable[[AsyncConnection], Awaitable[Any]]:
    """A real error with this SQLSTATE, raised by the server on the consumer's connection."""
    return sql(f"DO $$ BEGIN RAISE EXCEPTION 'outage' USING ERRCODE = '{sqlstate}'; END $$")


async def read_only_then_write(conn: AsyncConnection) -> None:
    # What a write meets on a server that became a read-only replica after a failover.
    await conn.execute(sa.text("SET LOCAL transaction_read_only = on"))
    await conn.execute(sa.text("CREATE TEMP TABLE outage_probe (x int)"))


OUTAGES: dict[str, Callable[[AsyncConnection], Awaitable[Any]]] = {
    "killed mid-statement": sql("SELECT pg_terminate_backend(pg_backend_pid())"),
    "read-only after failover": read_only_then_write,
    "too many connections": raised("53300"),
    "shutting down": raised("57P01"),
    "starting up": raised("57P03"),
}


@pytest.mark.parametrize("outage", OUTAGES, ids=list(OUTAGES))
async def test_each_database_outage_waits_then_applies_everything_once(
    engine: AsyncEngine, outage: str
) -> None:
    failures_left = 4  # more than max_attempts: counted as attempts, it would dead-letter

    async def handle(conn: AsyncConnection, batch: Sequence[CloudEvent]) -> None:
        nonlocal failures_left
        await record_enrolments(conn, batch)
        if failures_left:
            failures_left -= 1
            await OUTAGES[outage](conn)

    consumer, producer = consumer_on(engine, handle)
    ids = [f"core-{uuid.uuid4()}" for _ in range(5)]
    batch = [Message("t", offset, enrolment(c)) for offset, c in enumerate(ids)]
    await consumer.process_batch(batch)
    assert failures_left == 0
    assert producer.sent == []
    assert await rows_for(engine, ids) == dict.fromkeys(ids, 1)
    await consumer.process_batch(batch)  # redelivered after the outage: nothing new
    assert await rows_for(engine, ids) == dict.fromkeys(ids, 1)


async def test_a_pool_with_no_connection_to_give_waits(stack: Stack) -> None:
    stack.migrate("points")
    tight = create_engine(stack.database_url("points"), pool_size=1)
    tight.pool._timeout = 0.2  # type: ignore[attr-defined]  # fail fast rather than after 30 s
    try:
        consumer, producer = consumer_on(tight, record_enrolments)
        ids = [f"core-{uuid.uuid4()}" for _ in range(3)]
        async with tight.connect() as held:  # the only connection, taken by someone else
            await held.execute(sa.text("SELECT 1"))
            applying = asyncio.create_task(
                consumer.process_batch(
                    [Message("t", offset, enrolment(c)) for offset, c in enumerate(ids)]
                )
            )
            waited_before = _waits("t")
            await eventually(
                lambda: _async(_waits("t") >= waited_before + 2), what="two pool timeouts"
            )
            assert not applying.done()
        await asyncio.wait_for(applying, timeout=30)
        assert producer.sent == []
        assert await rows_for(tight, ids) == dict.fromkeys(ids, 1)
    finally:
        await tight.dispose()


async def test_a_poison_event_in_the_middle_of_a_batch_goes_to_the_dlq_alone(
    stack: Stack, engine: AsyncEngine
) -> None:
    """Over the real broker: 21 enrolments in one partition, the 11th one the database
    refuses; behind it, one more event with the same key."""
    topic = f"fedelta.test-core-{uuid.uuid4().hex[:8]}"
    dead_letter_producer = ResilientProducer(stack.kafka_bootstrap_servers, client_id="core-test")
    ids = [f"core-{uuid.uuid4()}" for _ in range(20)]
    poison_key = ids[10]
    batch = [enrolment(c) for c in ids[:10]]
    batch.append(enrolment(f"{poison_key}{POISON}", key=poison_key))
    batch.extend(enrolment(c) for c in ids[10:])
    behind = enrolment(f"{poison_key}-behind", key=poison_key)
    batch.append(behind)

    await _create_topics(stack, topic, dead_letter_topic(topic))
    publisher = ResilientProducer(stack.kafka_bootstrap_servers, client_id="core-test-publisher")
    try:
        await publisher.send_batch([(topic, e.to_bytes(), e.subject.encode()) for e in batch])
    finally:
        await publisher.close()

    consumer = EventConsumer(
        service=f"core-{uuid.uuid4().hex[:8]}",
        subscription=Subscription(
            topics=(topic,),
            event_types=frozenset({events.CUSTOMER_ENROLLED}),
            handle=record_enrolments,
        ),
        bootstrap_servers=stack.kafka_bootstrap_servers,
        engine=engine,
        inbox_table=inbox,
        dead_letters=dead_letter_producer,
        clock=SystemClock(),
        max_attempts=2,
        retry_backoff=0.01,
    )
    running = asyncio.create_task(consumer.run())
    expected = [*ids, f"{poison_key}-behind"]
    try:
        await eventually(
            lambda: _all_there(engine, expected),
            within=60,
            what="every enrolment but the poison applied",
        )
        dead = await eventually(lambda: _dead_letters(stack, topic), what="the dead letter")
    finally:
        await consumer.stop()
        await asyncio.wait_for(running, timeout=30)
        await dead_letter_producer.close()

    [record] = dead
    headers = dict(record.headers)
    assert record.key == poison_key.encode()
    assert headers["fedelta-original-offset"] == b"10"
    assert headers["fedelta-attempts"] == b"2"
    assert headers["fedelta-error"] == b"DBAPIError"  # the class, never the statement's text
    assert await rows_for(engine, expected) == dict.fromkeys(expected, 1)
    assert await rows_for(engine, [f"{poison_key}{POISON}"]) == {}


async def _create_topics(stack: Stack, *names: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1) for name in names])
    finally:
        await admin.close()


def _waits(topic: str) -> float:
    return sum(
        sample.value
        for metric in CONSUMER_DATABASE_WAITS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels["topic"] == topic
    )


async def _async(value: bool) -> bool:
    return value


async def _all_there(engine: AsyncEngine, customer_ids: list[str]) -> bool:
    return len(await rows_for(engine, customer_ids)) == len(customer_ids)


async def _dead_letters(stack: Stack, topic: str) -> list[Any] | None:
    records = await read_all(stack.kafka_bootstrap_servers, dead_letter_topic(topic), settle=0.2)
    return records or None
