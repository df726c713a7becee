"""Consumer lag as Kafka sees it: per consumer group, what is on the topics it reads beyond
the offsets it committed."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

CONSUMER_GROUPS = ("fedelta-points", "fedelta-tiers", "fedelta-notifications")


async def consumer_lag(
    bootstrap_servers: str, groups: tuple[str, ...] = CONSUMER_GROUPS
) -> dict[str, dict[tuple[str, int], int]]:
    """{group: {(topic, partition): lag}} over the partitions each group has committed."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
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
