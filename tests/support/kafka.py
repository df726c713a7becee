"""Read and write the real test broker directly, as a consumer or producer of the contract."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import ValidationError

from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from shared.messaging.kafka import KafkaConnection, client_options
from shared.messaging.partners import named_partner
from shared.messaging.schema import CONSUMES

# The partners this test process put on each broker's partners topic (by bootstrap address).
_PROVISIONED: dict[str, set[str]] = {}


async def publish(
    bootstrap: str | KafkaConnection, topic: str, key: str, value: bytes | CloudEvent
) -> None:
    """One record; an event of ingest's naming a partner goes after its partner's record, as
    ingest provisions a partner before it accepts the partner's calls."""
    if isinstance(value, CloudEvent):
        await provision_partners(bootstrap, [value])
    producer = AIOKafkaProducer(**client_options(bootstrap), acks="all")
    await producer.start()
    try:
        raw = value.to_bytes() if isinstance(value, CloudEvent) else value
        await producer.send_and_wait(topic, value=raw, key=key.encode())
    finally:
        await producer.stop()


async def provision_partners(
    bootstrap: str | KafkaConnection, given: Iterable[CloudEvent | str]
) -> None:
    """The partners of these events (or these partner ids) on the partners topic, as ingest
    announces a partner it provisions (shared.messaging.partners); each once per process."""
    address = bootstrap if isinstance(bootstrap, str) else bootstrap.bootstrap_servers
    done = _PROVISIONED.setdefault(address, set())
    wanted = {g if isinstance(g, str) else named_partner(g) for g in given} - {None} - done
    if not wanted:
        return
    producer = AIOKafkaProducer(**client_options(bootstrap), acks="all")
    await producer.start()
    try:
        for partner_id in sorted(p for p in wanted if p is not None):
            await producer.send_and_wait(
                topics.PARTNERS, value=_provisioned(partner_id), key=partner_id.encode()
            )
    finally:
        await producer.stop()
    done |= {p for p in wanted if p is not None}


def _provisioned(partner_id: str) -> bytes:
    now = datetime.now(UTC)
    payload = events.PartnerProvisioned(partner_id=partner_id, provisioned_at=now)
    return events.new_event(payload, source="ingest", subject=partner_id, time=now).to_bytes()


async def read_all(
    bootstrap: str | KafkaConnection, topic: str, *, settle: float = 1.0
) -> list[Any]:
    """Every record now on the topic, from the beginning of each partition."""
    consumer = AIOKafkaConsumer(**client_options(bootstrap), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
            ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + 30
        while not await _at_end(consumer, ends):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end within 30s")
            batches = await consumer.getmany(timeout_ms=int(settle * 1000))
            for batch in batches.values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def records_if_any(bootstrap: str | KafkaConnection, topic: str) -> list[Any] | None:
    """Every record on the topic, or None while it has none: a probe for `eventually`."""
    records = await read_all(bootstrap, topic, settle=0.2)
    return records or None


async def create_topics(bootstrap: str | KafkaConnection, *names: str, partitions: int = 1) -> None:
    """Scratch topics of a test's own (one partition, one replica unless told)."""
    admin = AIOKafkaAdminClient(**client_options(bootstrap))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    finally:
        await admin.close()


async def events_for(
    bootstrap: str | KafkaConnection, topic: str, subject: str
) -> list[CloudEvent]:
    """The CloudEvents on a topic about one customer, in the order of their partition."""
    found = []
    for record in await read_all(bootstrap, topic):
        if record.value is None:
            continue
        try:
            event = CloudEvent.from_bytes(record.value)
        except ValidationError:
            continue  # a poison message some test put there on purpose
        if event.subject == subject:
            found.append(event)
    return found


async def _at_end(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for partition, end in ends.items():
        if await consumer.position(partition) < end:
            return False
    return True


async def consumed_everywhere(
    bootstrap: str | KafkaConnection, key: str, *, marker_event_id: str
) -> bool:
    """Whether every service that acts on an event about `key` (a customer id) has applied it:
    its consumer group committed past the record, which it does only after the transaction
    that applied the record's batch. Looks at every record with that key on the main topics,
    once the one carrying `marker_event_id` (the newest the test made) is there; false while it
    is not. Who acts on which type is `shared.messaging.schema.CONSUMES`."""
    needed: dict[str, dict[TopicPartition, int]] = {}  # group -> partition -> offset past
    marked = False
    for spec in topics.MAIN_TOPICS:
        for record in await read_all(bootstrap, spec.name, settle=0.2):
            if record.key != key.encode() or record.value is None:
                continue  # another key, or a tombstone: nobody acts on it
            event = json.loads(record.value)
            marked = marked or event.get("id") == marker_event_id
            partition = TopicPartition(record.topic, record.partition)
            for service, types in CONSUMES.items():
                if event.get("type") in types:
                    group = needed.setdefault(f"fedelta-{service}", {})
                    group[partition] = max(group.get(partition, 0), record.offset + 1)
    return marked and await _committed_past(bootstrap, needed)


async def _committed_past(
    bootstrap: str | KafkaConnection, needed: dict[str, dict[TopicPartition, int]]
) -> bool:
    admin = AIOKafkaAdminClient(**client_options(bootstrap))
    await admin.start()
    try:
        for group, offsets in needed.items():
            committed = await admin.list_consumer_group_offsets(group)
            for partition, offset in offsets.items():
                done = committed.get(partition)
                if done is None or done.offset < offset:
                    return False
        return True
    finally:
        await admin.close()


async def dead_letters(
    bootstrap: str | KafkaConnection, topic: str, *, key: str, consumer: str
) -> list[Any]:
    """What one consuming service dead-lettered from `topic` for one key: every consuming
    service dead-letters a poison message on its own, so each test looks at its own."""
    from shared.messaging.topics import dead_letter_topic

    return [
        record
        for record in await read_all(bootstrap, dead_letter_topic(topic))
        if record.key == key.encode()
        and dict(record.headers)["fedelta-consumer"] == consumer.encode()
    ]
