"""Topic names and their layout; `python -m shared.topics` creates any that are missing."""

from __future__ import annotations

import argparse
import asyncio
import logging
from dataclasses import dataclass

CUSTOMERS = "fedelta.customers.v1"
PURCHASES = "fedelta.purchases.v1"
POINTS = "fedelta.points.v1"
TIERS = "fedelta.tiers.v1"
NOTIFICATIONS = "fedelta.notifications.v1"

log = logging.getLogger(__name__)


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False

    def config(self) -> dict[str, str]:
        if self.compacted:
            # Personal data lives only here: compaction plus erasure tombstones remove it.
            return {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
        return {"cleanup.policy": "delete"}


PARTITIONS = 3
MAIN_TOPICS = (
    TopicSpec(CUSTOMERS, PARTITIONS, compacted=True),
    TopicSpec(PURCHASES, PARTITIONS),
    TopicSpec(POINTS, PARTITIONS),
    TopicSpec(TIERS, PARTITIONS),
    TopicSpec(NOTIFICATIONS, PARTITIONS),
)
# A dead-letter topic keeps its topic's policy: the customers one holds personal data too, so
# it is compacted, and an erasure's tombstone removes a dead-lettered profile as well.
ALL_TOPICS = MAIN_TOPICS + tuple(
    TopicSpec(dead_letter_topic(spec.name), spec.partitions, compacted=spec.compacted)
    for spec in MAIN_TOPICS
)


async def ensure_topics(bootstrap_servers: str, replication_factor: int = 1) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in ALL_TOPICS if spec.name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        name=spec.name,
                        num_partitions=spec.partitions,
                        replication_factor=replication_factor,
                        topic_configs=spec.config(),
                    )
                    for spec in missing
                ]
            )
        return [spec.name for spec in missing]
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Create Fedelta's Kafka topics.")
    parser.add_argument("--bootstrap-servers", required=True)
    args = parser.parse_args()
    created = asyncio.run(ensure_topics(args.bootstrap_servers))
    print(f"topics: {len(created)} created, {len(ALL_TOPICS) - len(created)} already there")


if __name__ == "__main__":
    main()
