"""Kafka clients that survive a broker that is down at start-up or goes away for a while."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner, murmur2

# Re-exported: where the clients of ours take their connection options from.
from shared.messaging.connection import KafkaConnection as KafkaConnection
from shared.messaging.connection import client_options as client_options
from shared.messaging.connection import connection_of
from shared.messaging.events import CLOUDEVENTS_JSON

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=65_536)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


class KeyPartitioner:
    """A key's partition as aiokafka's DefaultPartitioner gives it (Kafka's murmur2: where
    Java's producers and every producer of ours put the key), each key's hash remembered:
    aiokafka's murmur2 is pure Python, 4 µs a key, and a relay's keys are customers, who come
    back."""

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return int(DefaultPartitioner()(key, all_partitions, available))
        return all_partitions[_key_hash(key) % len(all_partitions)]


# The event's type beside the document, so a consumer passes over the types it does not use
# without parsing them (the document in the value stays the complete CloudEvent).
EVENT_TYPE_HEADER = "fedelta-event-type"
# The CloudEvents Kafka binding's mode switch: with it a CloudEvents SDK reads the value as a
# structured-mode event; without it the SDK must assume binary mode and finds no event.
CONTENT_TYPE_HEADER = "content-type"
STRUCTURED_CONTENT_TYPE = CLOUDEVENTS_JSON.encode()
TRACEPARENT_HEADER = "traceparent"
Headers = list[tuple[str, bytes]]
# (topic, value, key[, headers]); a None value is a tombstone.
Record = tuple[str, bytes | None, bytes] | tuple[str, bytes | None, bytes, Headers]


class BatchProducer(Protocol):
    async def send_batch(self, records: Sequence[Record]) -> None: ...


class Producer(Protocol):
    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any: ...


class ResilientProducer:
    """An idempotent, acks=all producer, created on first use and re-created after a failure.

    A service must start, answer HTTP and keep its outbox while Kafka is unreachable, so the
    client is not started in the lifespan; a failed send drops it and the caller retries.
    """

    def __init__(
        self,
        bootstrap_servers: str | KafkaConnection,
        client_id: str,
        *,
        linger_ms: int = 5,
        max_batch_size: int = 512 * 1024,
    ) -> None:
        self._connection = connection_of(bootstrap_servers)
        self._partitioner = KeyPartitioner()
        self._client_id = client_id
        # A relay batch is thousands of records: a few milliseconds of linger and large
        # per-partition batches make it a handful of produce requests instead of one each.
        self._linger_ms = linger_ms
        self._max_batch_size = max_batch_size
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    **self._connection.options(),
                    client_id=self._client_id,
                    enable_idempotence=True,
                    acks="all",
                    request_timeout_ms=15_000,
                    linger_ms=self._linger_ms,
                    max_batch_size=self._max_batch_size,
                    partitioner=self._partitioner,
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        producer = await self._started()
        try:
            return await producer.send_and_wait(topic, value=value, key=key, headers=headers)
        except Exception:
            await self.close()
            raise

    async def send_batch(self, records: Sequence[Record]) -> None:
        """Sends (topic, value, key[, headers]) records in order and waits until the broker
        has them all.

        The records are grouped by partition (the same murmur2 partitioner `send` uses, so a
        key lands where every other producer of ours puts it) and appended to the producer's
        batches directly: a batch per partition and not a future per record, which is most of
        what a relay costs. Each partition's records keep their order, hence each key's."""
        producer = await self._started()
        try:
            by_partition: dict[tuple[str, int], list[Record]] = {}
            partitions: dict[str, list[int]] = {}
            for record in records:
                topic, key = record[0], record[2]
                if topic not in partitions:
                    partitions[topic] = sorted(await producer.partitions_for(topic))
                every = partitions[topic]
                partition = self._partitioner(key, every, every)
                by_partition.setdefault((topic, partition), []).append(record)
            deliveries = []
            for (topic, partition), queued in by_partition.items():
                batch = producer.create_batch()
                for _, value, key, *rest in queued:
                    headers = rest[0] if rest else []
                    if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                        # Full: send it, and start the next with this record (an empty batch
                        # takes any record).
                        deliveries.append(
                            await producer.send_batch(batch, topic, partition=partition)
                        )
                        batch = producer.create_batch()
                        batch.append(key=key, value=value, timestamp=None, headers=headers)
                deliveries.append(await producer.send_batch(batch, topic, partition=partition))
            await asyncio.gather(*deliveries)
        except Exception:
            await self.close()
            raise

    async def partitions_for(self, topic: str) -> list[int]:
        """The topic's partition ids, sorted, from the cluster's metadata."""
        producer = await self._started()
        try:
            return sorted(await producer.partitions_for(topic))
        except Exception:
            await self.close()
            raise

    async def close(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await producer.stop()
            except Exception:  # a broken client is being thrown away anyway
                log.debug("producer stop failed", exc_info=True)
