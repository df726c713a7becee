"""A producer as ingest's quiet-partition writer sees it: partitions per topic, and what was
sent, batch by batch; failures scripted per call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from services.ingest.adapters.quiet_partitions import PartitionProducer
from shared.messaging.kafka import Record


class FakePartitionProducer:
    def __init__(self, partitions: Mapping[str, int], failures: int = 0) -> None:
        self.partitions = dict(partitions)
        self.failures = failures
        self.batches: list[list[Record]] = []

    async def partitions_for(self, topic: str) -> list[int]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("kafka is away")
        return list(range(self.partitions[topic]))

    async def send_batch(self, records: Sequence[Record]) -> None:
        self.batches.append(list(records))


def _checked(producer: FakePartitionProducer) -> PartitionProducer:
    return producer  # mypy: the fake implements the port
