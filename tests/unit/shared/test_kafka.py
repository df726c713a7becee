"""The producer's batch path on a fake client: records grouped by partition with the same
partitioner as `send`, each partition's order kept, a full batch sent and a new one begun."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from shared.messaging.kafka import KeyPartitioner, ResilientProducer

PARTITIONS = {0, 1, 2}


class FakeBatch:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = []

    def append(
        self, *, key: bytes, value: bytes, timestamp: None, headers: list[tuple[str, bytes]]
    ) -> object | None:
        if len(self.records) >= self.capacity:
            return None
        self.records.append((key, value, headers))
        return object()


class FakeClient:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.sent: list[tuple[str, int, FakeBatch]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return PARTITIONS

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.capacity)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> Any:
        self.sent.append((topic, partition, batch))
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered


def producer_with(client: FakeClient) -> ResilientProducer:
    producer = ResilientProducer("127.0.0.1:1", client_id="test")
    producer._producer = client  # started, as far as it knows
    return producer


async def test_each_key_lands_where_send_would_put_it_in_the_order_given() -> None:
    client = FakeClient(capacity=1000)
    records = [
        ("t", f"v{i}".encode(), f"customer-{i % 7}".encode(), [("h", b"x")]) for i in range(50)
    ]
    await producer_with(client).send_batch(records)
    partitioner = DefaultPartitioner()
    every = sorted(PARTITIONS)
    for topic, partition, batch in client.sent:
        assert topic == "t"
        for key, _, headers in batch.records:
            assert partitioner(key, every, every) == partition
            assert headers == [("h", b"x")]
    sent_values = [value for _, _, batch in client.sent for _, value, _ in batch.records]
    assert sorted(sent_values) == sorted(value for _, value, _, _ in records)
    for key in {key for _, _, key, _ in records}:
        sent_for_key = [v for _, _, b in client.sent for k, v, _ in b.records if k == key]
        assert sent_for_key == [value for _, value, k, _ in records if k == key]


@given(st.binary(max_size=64), st.integers(1, 12))
def test_the_key_partitioner_places_a_key_where_kafkas_default_one_does(
    key: bytes, count: int
) -> None:
    every = list(range(count))
    for _ in range(2):  # the hash computed, then remembered
        assert KeyPartitioner()(key, every, every) == DefaultPartitioner()(key, every, every)


async def test_a_full_batch_is_sent_and_the_next_record_starts_another() -> None:
    client = FakeClient(capacity=2)
    records = [("t", f"v{i}".encode(), b"one-key") for i in range(5)]
    await producer_with(client).send_batch(records)
    assert [len(batch.records) for _, _, batch in client.sent] == [2, 2, 1]
    assert [v for _, _, b in client.sent for _, v, _ in b.records] == [r[1] for r in records]
