"""The batched consumer on the real PostgreSQL and Kafka: poison isolated in the middle of a
batch, and every kind of database outage waited out, then applied exactly once.

The effect under test is one row per enrolment in the points database's `customers` table,
applied set-based by a minimal batch handler, so that what is proven here is the consumer's
own behaviour, whatever the services' rules.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import SystemClock
from shared.messaging import events
from shared.messaging.consumer import BatchHandler, EventConsumer, Subscription
from shared.messaging.events import CloudEvent
from shared.messaging.kafka import ResilientProducer
from shared.messaging.topics import dead_letter_topic
from shared.observability.metrics import CONSUMER_DATABASE_WAITS
from shared.storage.db import create_engine
from tests.integration.core.support import INBOX, enrolled, insert_enrolments, rows_for
from tests.support.factories import enrolment
from tests.support.fakes.messaging import FakeProducer, Message
from tests.support.kafka import create_topics, records_if_any
from tests.support.polling import eventually
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
POISON = "-poison"


async def record_enrolments(conn: AsyncConnection, batch: Sequence[CloudEvent]) -> None:
    enrolments = enrolled(batch)
    if any(e.customer_id.endswith(POISON) for e in enrolments):
        # A statement the healthy database refuses for this event's data (22012, a data
        # exception): the message's fault, as a value out of a column's range would be.
        await conn.execute(sa.text("SELECT 1 / 0"))
    await insert_enrolments(conn, enrolments)


def records(topic: str, *customer_ids: str) -> list[Message]:
    """One record per enrolment, in one partition of `topic`, from offset 0."""
    built = [enrolment(customer_id, at=NOW) for customer_id in customer_ids]
    return [Message.of(event, offset, topic=topic) for offset, event in enumerate(built)]


def consumer_on(engine: AsyncEngine, handle: BatchHandler) -> tuple[EventConsumer, FakeProducer]:
    producer = FakeProducer()
    built = EventConsumer(
        service=f"core-{uuid.uuid4().hex[:8]}",
        subscription=Subscription(
            topics=("unused",), event_types=frozenset({events.CUSTOMER_ENROLLED}), handle=handle
        ),
        bootstrap_servers="127.0.0.1:1",
        engine=engine,
        inbox_table=INBOX,
        dead_letters=producer,
        clock=SystemClock(),
        max_attempts=2,
        retry_backoff=0.01,
        outage_backoff_max=0.05,
    )
    return built, producer


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
    batch = records("t", *ids)
    await consumer.process_batch(batch)
    assert failures_left == 0
    assert producer.sent == []
    assert await rows_for(engine, ids) == dict.fromkeys(ids, 1)
    await consumer.process_batch(batch)  # redelivered after the outage: nothing new
    assert await rows_for(engine, ids) == dict.fromkeys(ids, 1)


async def test_a_pool_with_no_connection_to_give_waits(stack: Stack, engine: AsyncEngine) -> None:
    tight = create_engine(stack.database_url("points"), pool_size=1)  # migrated by `engine`
    tight.pool._timeout = 0.2  # type: ignore[attr-defined]  # fail fast rather than after 30 s
    try:
        consumer, producer = consumer_on(tight, record_enrolments)
        ids = [f"core-{uuid.uuid4()}" for _ in range(3)]
        async with tight.connect() as held:  # the only connection, taken by someone else
            await held.execute(sa.text("SELECT 1"))
            applying = asyncio.create_task(consumer.process_batch(records("t", *ids)))
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
    dead_letter_producer = ResilientProducer(stack.kafka, client_id="core-test")
    ids = [f"core-{uuid.uuid4()}" for _ in range(20)]
    poison_key = ids[10]
    batch = [enrolment(c, at=NOW) for c in ids[:10]]
    batch.append(enrolment(f"{poison_key}{POISON}", at=NOW, subject=poison_key))
    batch.extend(enrolment(c, at=NOW) for c in ids[10:])
    behind = enrolment(f"{poison_key}-behind", at=NOW, subject=poison_key)
    batch.append(behind)

    await create_topics(stack.kafka, topic, dead_letter_topic(topic))
    publisher = ResilientProducer(stack.kafka, client_id="core-test-publisher")
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
        bootstrap_servers=stack.kafka,
        engine=engine,
        inbox_table=INBOX,
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
        dead = await eventually(
            lambda: records_if_any(stack.kafka, dead_letter_topic(topic)),
            what="the dead letter",
        )
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
