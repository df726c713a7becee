"""The periodic write that makes the erasure deadline hold on every partition
(`domain/quiet_partitions.py` says why): a worker of every ingest process that appends a
tombstone of a reserved key to each partition of the customers and feedback topics and of
their dead-letter topics every `interval` seconds (half of `segment.ms` or less,
docs/operations.md, *Erasure on Kafka*), through the producer ingest publishes its outbox with
(the same principal that writes the erasures' own tombstones on all four)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from services.ingest.domain.quiet_partitions import reserved_keys
from shared.messaging import topics
from shared.messaging.kafka import Record
from shared.observability.metrics import QUIET_PARTITIONS_WRITTEN

log = logging.getLogger(__name__)

# The compacted topics, the only ones with personal data, which ingest writes.
ROLLED_TOPICS = (
    topics.CUSTOMERS,
    topics.dead_letter_topic(topics.CUSTOMERS),
    topics.FEEDBACK,
    topics.dead_letter_topic(topics.FEEDBACK),
)
# After a failed write (Kafka away), the next try comes this soon, or at the interval if sooner.
RETRY_SECONDS = 30.0


class PartitionProducer(Protocol):
    async def partitions_for(self, topic: str) -> list[int]: ...

    async def send_batch(self, records: Sequence[Record]) -> None: ...


def roll_records(topic: str, partitions: int) -> list[Record]:
    """A tombstone of each partition's reserved key: one record per partition."""
    return [(topic, None, key, []) for key in reserved_keys(partitions)]


@dataclass
class QuietPartitionWriter:
    producer: PartitionProducer
    interval: float
    topics: Sequence[str] = ROLLED_TOPICS
    name: str = "quiet-partition-writer"

    def __post_init__(self) -> None:
        self._stopping = asyncio.Event()

    async def write_once(self) -> int:
        """One tombstone on every partition of each topic; returns how many were written."""
        records: list[Record] = []
        for topic in self.topics:
            records += roll_records(topic, len(await self.producer.partitions_for(topic)))
        await self.producer.send_batch(records)
        for topic in self.topics:
            QUIET_PARTITIONS_WRITTEN.labels(topic).set_to_current_time()
        return len(records)

    async def run(self) -> None:
        while not self._stopping.is_set():
            wait = self.interval
            try:
                await self.write_once()
            except Exception as error:
                log.warning("%s could not write (%s)", self.name, type(error).__name__)
                wait = min(self.interval, RETRY_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=wait)

    async def stop(self) -> None:
        self._stopping.set()
