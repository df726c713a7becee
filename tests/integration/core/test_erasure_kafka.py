"""Erasure reaches Kafka, on the real broker: an erased customer's email and phone leave the
customers topic and its dead-letter topic within the topics' max.compaction.lag.ms.

Ingest enrols, updates and erases a customer on the real topics; a consumer's dead-letter copy
of the enrolment sits on `fedelta.customers.v1.dlq` (the copy the consumer writes, keyed by
the customer id). The erasure must leave a tombstone after every record of the key on both
topics. The broker's cleaner then has to remove the superseded records within the lag: the
shared test stack's topics keep the default lag (a day; other tests read the customers topic's
history), so the records go, in order and as they are, to two scratch topics created with
exactly the configs `fedelta topics create` gives the customers topic and its dead-letter
topic, with a lag of one second. The cleaner compacts only rolled segments, and a segment rolls
on the first write after segment.ms: a record of another key (the traffic of any other
customer) is appended on every poll. A partition with no such traffic is rolled by ingest's
periodic write instead: test_erasure_everywhere.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.ingest.api.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from shared.messaging.kafka import KafkaConnection, client_options
from shared.messaging.topics import (
    ALL_TOPICS,
    ERASURE_CONFIGS,
    TopicSettings,
    TopicSpec,
    dead_letter_topic,
    describe_topics,
    tighten,
    weaknesses,
)
from tests.integration.core.support import new_pos
from tests.support.kafka import read_all
from tests.support.polling import eventually
from tests.support.services import running, settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

DLQ = dead_letter_topic(topics.CUSTOMERS)
SHORT_LAG = dataclasses.replace(TopicSettings.local(), max_compaction_lag_ms=1000)
# The log cleaner wakes every log.cleaner.backoff.ms (15 s by default) when it found nothing to
# do; a loaded CI machine needs a few of its rounds.
COMPACTION_DEADLINE_S = 180.0


@pytest_asyncio.fixture(scope="module")
async def ingest(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    stack.migrate("ingest")
    async with running(create_ingest, settings_for(IngestSettings, stack, "ingest")) as (_, c):
        yield c


async def records_of(stack: Stack, topic: str, key: str) -> list[Any]:
    return [r for r in await read_all(stack.kafka, topic) if r.key == key.encode()]


def carrying(records: list[Any], secrets: list[str]) -> list[Any]:
    """The records whose bytes hold any of `secrets`."""
    return [r for r in records if r.value and any(s.encode() in r.value for s in secrets)]


async def test_the_stack_topics_give_the_erasure_bound(stack: Stack) -> None:
    specs = {spec.name: spec for spec in ALL_TOPICS}
    states = {s.name: s for s in await describe_topics(stack.kafka)}
    local = TopicSettings.local()
    for name in (topics.CUSTOMERS, DLQ):
        assert weaknesses(specs[name], local, states[name]) == [], name
        assert int(states[name].config["max.compaction.lag.ms"]) <= local.max_compaction_lag_ms


async def test_a_looser_compacted_topic_is_tightened_in_place(stack: Stack) -> None:
    """What `fedelta topics create` does to an existing customers topic made without the
    erasure configs: sets them, keeps the topic's other configs, and then leaves it alone."""
    bootstrap = stack.kafka
    spec = TopicSpec(f"fedelta.test.tighten.{uuid.uuid4().hex}", 1, compacted=True)
    settings = dataclasses.replace(SHORT_LAG, partitions=1)
    made_by_an_older_version = {
        "cleanup.policy": "compact",
        "min.insync.replicas": "1",
        "max.message.bytes": "200000",
        "delete.retention.ms": "500",  # stricter than asked: kept
    }
    admin = AIOKafkaAdminClient(**client_options(bootstrap))
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(spec.name, 1, 1, topic_configs=made_by_an_older_version)]
        )
        [before] = await eventually(
            lambda: describe_topics(bootstrap, [spec.name]), within=30, what="the topic"
        )
        assert weaknesses(spec, settings, before) != []

        assert await tighten(admin, [spec], settings) == [spec.name]

        [after] = await describe_topics(bootstrap, [spec.name])
        assert weaknesses(spec, settings, after) == []
        assert {name: after.config[name] for name in ERASURE_CONFIGS} == {
            "max.compaction.lag.ms": "1000",
            "segment.ms": "1000",
            "min.cleanable.dirty.ratio": "0.1",
            "delete.retention.ms": "500",
        }
        assert after.overrides["max.message.bytes"] == "200000"
        assert after.overrides["min.insync.replicas"] == "1"
        assert await tighten(admin, [spec], settings) == []
    finally:
        try:
            await admin.delete_topics([spec.name])
        finally:
            await admin.close()


async def test_an_erased_customer_leaves_the_customers_topic_and_its_dead_letters(
    stack: Stack, ingest: httpx.AsyncClient
) -> None:
    pos = await new_pos(ingest, "Erasure On Kafka", "partner")
    customer_id = f"cust-{uuid.uuid4().hex}"
    secrets = [
        f"first-{uuid.uuid4().hex}@example.com",
        f"+35840{uuid.uuid4().int % 10**7:07d}",
        f"second-{uuid.uuid4().hex}@example.com",
        f"+35850{uuid.uuid4().int % 10**7:07d}",
    ]
    enrolled = await pos.enrol(
        customer_id, email=secrets[0], phone=secrets[1], consent={"email": True, "sms": True}
    )
    assert enrolled.status_code == 202, enrolled.text
    path = f"/v1/customers/{customer_id}"
    updated = await pos.send(
        "PATCH",
        path,
        {"email": secrets[2], "phone": secrets[3]},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert updated.status_code == 202, updated.text

    async def both_profiles() -> list[Any] | None:
        found = await records_of(stack, topics.CUSTOMERS, customer_id)
        return found if len(carrying(found, secrets)) == 2 else None

    profiles = await eventually(both_profiles, within=60, what="enrolment and update on Kafka")
    # A consumer gave up on the enrolment: its dead-letter copy, as the consumer writes it.
    await _copy(stack.kafka, DLQ, profiles[:1])

    erased = await pos.send("DELETE", path, raw=b"", headers={"Idempotency-Key": uuid.uuid4().hex})
    assert erased.status_code == 202, erased.text

    async def tombstoned(topic: str) -> list[Any] | None:
        found = await records_of(stack, topic, customer_id)
        return found if found and found[-1].value is None else None

    on_topic = await eventually(lambda: tombstoned(topics.CUSTOMERS), within=60, what="tombstone")
    on_dlq = await eventually(lambda: tombstoned(DLQ), within=60, what="the DLQ's tombstone")
    assert [CloudEvent.from_bytes(r.value).type for r in on_topic[:-1]] == [
        events.CUSTOMER_ENROLLED,
        events.CUSTOMER_UPDATED,
        events.CUSTOMER_ERASED,
    ]
    assert len(carrying(on_dlq, secrets)) == 1 and on_dlq[-1].value is None

    # The broker's cleaner, with the configs of `fedelta topics create` and a short lag.
    for topic, records in ((topics.CUSTOMERS, on_topic), (DLQ, on_dlq)):
        left = await _compacted(stack.kafka, topic, records, secrets)
        assert carrying(left, secrets) == [], topic


async def _copy(bootstrap: str | KafkaConnection, topic: str, records: list[Any]) -> None:
    producer = AIOKafkaProducer(**client_options(bootstrap), acks="all")
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(
                topic, record.value, key=record.key, headers=list(record.headers or ())
            )
    finally:
        await producer.stop()


async def _compacted(
    bootstrap: str | KafkaConnection, like: str, records: list[Any], secrets: list[str]
) -> list[Any]:
    """What the cleaner leaves of `records` on a scratch topic configured as `like` is with
    SHORT_LAG, once none of them carries a secret (an AssertionError past the deadline)."""
    spec = next(spec for spec in ALL_TOPICS if spec.name == like)
    scratch = f"fedelta.test.erasure.{uuid.uuid4().hex}"
    admin = AIOKafkaAdminClient(**client_options(bootstrap))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(scratch, 1, 1, topic_configs=spec.config(SHORT_LAG))])
        await _copy(bootstrap, scratch, records)
        assert carrying(await read_all(bootstrap, scratch), secrets)  # there before the cleaner
        return await _cleaned(bootstrap, scratch, secrets)
    finally:
        try:
            await admin.delete_topics([scratch])
        finally:
            await admin.close()


async def _cleaned(bootstrap: str | KafkaConnection, scratch: str, secrets: list[str]) -> list[Any]:
    producer = AIOKafkaProducer(**client_options(bootstrap), acks="all")
    await producer.start()
    deadline = time.monotonic() + COMPACTION_DEADLINE_S
    try:
        while True:
            # Another key's record: rolls the segment once it is older than segment.ms.
            await producer.send_and_wait(scratch, None, key=b"another-customer")
            left = await read_all(bootstrap, scratch, settle=0.2)
            if not carrying(left, secrets):
                return left
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(carrying(left, secrets))} record(s) of the erased customer still on "
                    f"{scratch} after {COMPACTION_DEADLINE_S}s"
                )
            await asyncio.sleep(1.0)  # between cleaner rounds; the deadline bounds the wait
    finally:
        await producer.stop()
