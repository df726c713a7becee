"""Read and write the real test broker directly, as a consumer or producer of the contract."""

from __future__ import annotations

import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from shared.messaging.events import CloudEvent


async def publish(bootstrap: str, topic: str, key: str, value: bytes | CloudEvent) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        raw = value.to_bytes() if isinstance(value, CloudEvent) else value
        await producer.send_and_wait(topic, value=raw, key=key.encode())
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str, *, settle: float = 1.0) -> list[Any]:
    """Every record now on the topic, from the beginning of each partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
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


async def events_for(bootstrap: str, topic: str, subject: str) -> list[CloudEvent]:
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


async def dead_letters(bootstrap: str, topic: str, *, key: str, consumer: str) -> list[Any]:
    """What one consuming service dead-lettered from `topic` for one key: every consuming
    service dead-letters a poison message on its own, so each test looks at its own."""
    from shared.messaging.topics import dead_letter_topic

    return [
        record
        for record in await read_all(bootstrap, dead_letter_topic(topic))
        if record.key == key.encode()
        and dict(record.headers)["fedelta-consumer"] == consumer.encode()
    ]
