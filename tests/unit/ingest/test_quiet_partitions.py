"""The periodic write that rolls a quiet partition of the customers topic and its dead letters
(issue 19: the erasure deadline on every partition)."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as kafka_murmur2
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from services.ingest.adapters.quiet_partitions import (
    ROLLED_TOPICS,
    QuietPartitionWriter,
)
from services.ingest.bootstrap import bootstrap
from services.ingest.domain.quiet_partitions import (
    is_reserved,
    murmur2,
    partition_of,
    reserved_keys,
)
from services.ingest.settings import IngestSettings
from shared.bounds import IDENTIFIER_PATTERN
from shared.messaging import acls, topics
from tests.support.fakes.partitions import FakePartitionProducer
from tests.support.polling import eventually

DLQ = topics.dead_letter_topic(topics.CUSTOMERS)


@given(st.integers(min_value=1, max_value=256))
def test_each_partition_gets_one_reserved_key_where_kafka_puts_it(partitions: int) -> None:
    keys = reserved_keys(partitions)
    every = list(range(partitions))
    # aiokafka's own partitioner (what ResilientProducer.send_batch uses), not ours.
    assert [DefaultPartitioner()(key, every, every) for key in keys] == every
    assert [partition_of(key, partitions) for key in keys] == every
    assert len(set(keys)) == partitions


@given(st.binary(max_size=64))
def test_the_hash_is_kafkas_murmur2(key: bytes) -> None:
    assert murmur2(key) == kafka_murmur2(key)


@given(st.integers(min_value=1, max_value=256))
def test_a_reserved_key_is_never_a_customer_id(partitions: int) -> None:
    for key in reserved_keys(partitions):
        assert is_reserved(key)
        assert re.fullmatch(IDENTIFIER_PATTERN, key.decode()) is None


def test_a_customer_id_is_not_reserved() -> None:
    assert not is_reserved(b"cust-1")
    assert not is_reserved(None)


def test_a_topic_has_partitions() -> None:
    with pytest.raises(ValueError, match="at least one"):
        reserved_keys(0)


async def test_one_tombstone_on_every_partition_of_the_customers_topic_and_its_dead_letters() -> (
    None
):
    # The feedback topic and its dead letters hold personal data too.
    feedback_dlq = topics.dead_letter_topic(topics.FEEDBACK)
    layout = {topics.CUSTOMERS: 3, DLQ: 5, topics.FEEDBACK: 3, feedback_dlq: 2}
    producer = FakePartitionProducer(layout)
    writer = QuietPartitionWriter(producer, interval=60)

    assert await writer.write_once() == 13

    [batch] = producer.batches
    for topic in layout:  # the time of the write, for the alert
        written = REGISTRY.get_sample_value(
            "fedelta_quiet_partitions_written_timestamp_seconds", {"topic": topic}
        )
        assert written is not None and abs(written - time.time()) < 60
    assert set(ROLLED_TOPICS) == set(layout)
    for topic, count in layout.items():
        sent = [record for record in batch if record[0] == topic]
        assert all(record[1] is None for record in sent)  # tombstones: no event
        assert sorted(partition_of(record[2], count) for record in sent) == list(range(count))


async def test_the_writer_writes_every_interval_until_stopped() -> None:
    producer = FakePartitionProducer({topic: 2 for topic in ROLLED_TOPICS})
    writer = QuietPartitionWriter(producer, interval=0.01)
    running = asyncio.create_task(writer.run())
    try:
        await eventually(lambda: _at_least(producer, 3), within=10, what="three rounds")
    finally:
        await writer.stop()
        await asyncio.wait_for(running, timeout=5)
    assert all(len(batch) == 2 * len(ROLLED_TOPICS) for batch in producer.batches)


async def test_a_failed_write_is_retried_without_stopping_the_writer() -> None:
    producer = FakePartitionProducer({topic: 1 for topic in ROLLED_TOPICS}, failures=2)
    writer = QuietPartitionWriter(producer, interval=0.01)
    running = asyncio.create_task(writer.run())
    try:
        await eventually(lambda: _at_least(producer, 1), within=10, what="a write after failures")
    finally:
        await writer.stop()
        await asyncio.wait_for(running, timeout=5)
    assert producer.failures == 0


async def test_a_stopped_writer_ends_at_once_however_long_its_interval() -> None:
    producer = FakePartitionProducer({topic: 1 for topic in ROLLED_TOPICS})
    writer = QuietPartitionWriter(producer, interval=3600)
    running = asyncio.create_task(writer.run())
    await eventually(lambda: _at_least(producer, 1), within=10, what="the first write")
    await writer.stop()
    await asyncio.wait_for(running, timeout=5)
    assert len(producer.batches) == 1


async def _at_least(producer: FakePartitionProducer, rounds: int) -> bool:
    return len(producer.batches) >= rounds


SETTINGS = {
    "database_url": "postgresql+asyncpg://u:p@localhost/db",
    "kafka_bootstrap_servers": "localhost:9092",
    "admin_token_sha256": "0" * 64,
}


async def test_every_ingest_process_runs_the_writer_at_the_configured_interval() -> None:
    settings = IngestSettings(**SETTINGS, quiet_partition_write_seconds=600)  # type: ignore[arg-type]
    runtime = await bootstrap(settings)
    try:
        [writer] = [w for w in runtime.workers if isinstance(w, QuietPartitionWriter)]
        assert writer.interval == 600
        assert writer.producer is runtime.producer
        assert tuple(writer.topics) == (
            topics.CUSTOMERS,
            DLQ,
            topics.FEEDBACK,
            topics.dead_letter_topic(topics.FEEDBACK),
        )
    finally:
        await runtime.aclose()


def test_the_interval_defaults_to_half_the_default_erasure_lag_and_is_never_longer() -> None:
    assert IngestSettings(**SETTINGS).quiet_partition_write_seconds * 1000 == (  # type: ignore[arg-type]
        topics.MAX_COMPACTION_LAG_MS / 2
    )
    with pytest.raises(ValueError, match="43200"):
        IngestSettings(**SETTINGS, quiet_partition_write_seconds=43_201)  # type: ignore[arg-type]


def test_ingest_may_write_every_topic_the_writer_writes() -> None:
    """Its principal's ACLs (shared.messaging.acls): WRITE on both topics, which implies the
    DESCRIBE that reading their partition counts needs."""
    assert set(ROLLED_TOPICS) <= set(acls.GRANTS["ingest"].writes)
