"""Consumer lag as Kafka sees it: per consumer group, what is on the topics it reads beyond
the offsets it committed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from fedelta_client.devenv import kafka_bootstrap_servers, load_values
from shared.messaging.kafka import KafkaConnection, client_options

CONSUMER_GROUPS = (
    "fedelta-points",
    "fedelta-tiers",
    "fedelta-notifications",
    "fedelta-engagement",
    "fedelta-insights",
)


def kafka_connection(environ: Mapping[str, str] | None = None) -> KafkaConnection:
    """The broker as dev.env's admin principal (KAFKA_USERNAME, KAFKA_PASSWORD,
    KAFKA_SECURITY_PROTOCOL; the environment's win): what every Kafka command of the fedelta
    command connects with. None given (a stack from before SASL): PLAINTEXT."""
    _, values = load_values(None, environ)
    servers = kafka_bootstrap_servers(environ)
    return KafkaConnection.from_env(values | {"KAFKA_BOOTSTRAP_SERVERS": servers})


async def consumer_lag(
    bootstrap_servers: str | KafkaConnection, groups: tuple[str, ...] = CONSUMER_GROUPS
) -> dict[str, dict[tuple[str, int], int]]:
    """{group: {(topic, partition): lag}} over the partitions each group has committed."""
    admin = AIOKafkaAdminClient(**client_options(bootstrap_servers))
    probe = AIOKafkaConsumer(**client_options(bootstrap_servers), enable_auto_commit=False)
    await admin.start()
    await probe.start()
    try:
        lag: dict[str, dict[tuple[str, int], int]] = {}
        for group in groups:
            committed: dict[Any, Any] = await admin.list_consumer_group_offsets(group)
            if not committed:
                lag[group] = {}
                continue
            partitions = list(committed)
            ends = await probe.end_offsets(partitions)
            lag[group] = {
                (tp.topic, tp.partition): max(0, ends[tp] - max(committed[tp].offset, 0))
                for tp in partitions
            }
        return lag
    finally:
        await probe.stop()
        await admin.close()


def total_lag(lag: dict[str, dict[tuple[str, int], int]]) -> int:
    return sum(sum(per_partition.values()) for per_partition in lag.values())


__all__ = ["CONSUMER_GROUPS", "consumer_lag", "total_lag"]
