"""Topic administration on the real broker: what exists is described as it is, and a topic
weaker than asked is reported (exit status 3), never changed and never accepted in silence."""

from __future__ import annotations

import asyncio

import pytest

from shared.messaging import topics
from shared.messaging.topics import (
    ALL_TOPICS,
    WEAKER_EXIT_STATUS,
    TopicSettings,
    describe_topics,
    ensure_topic_layout,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


async def test_the_topics_are_described_as_the_broker_has_them(stack: Stack) -> None:
    states = {s.name: s for s in await describe_topics(stack.kafka)}
    assert set(states) == {spec.name for spec in ALL_TOPICS}
    customers, purchases = states[topics.CUSTOMERS], states[topics.PURCHASES]
    assert (customers.partitions, customers.replication_factor) == (3, 1)
    assert customers.config["cleanup.policy"] == "compact"
    assert purchases.config["cleanup.policy"] == "delete"
    assert purchases.config["min.insync.replicas"] == "1"
    assert int(purchases.config["retention.ms"]) >= topics.RETENTION_MS


async def test_a_single_broker_layout_is_not_weaker_than_the_local_settings(stack: Stack) -> None:
    result = await ensure_topic_layout(stack.kafka, TopicSettings.local())
    assert result.created == []
    assert result.weaker == {}


async def test_settings_for_a_cluster_report_every_topic_and_change_none(stack: Stack) -> None:
    bootstrap = stack.kafka
    before = await describe_topics(bootstrap)
    result = await ensure_topic_layout(bootstrap, TopicSettings(partitions=6))
    assert result.created == []
    assert set(result.weaker) == {spec.name for spec in ALL_TOPICS}
    assert result.weaker[topics.PURCHASES] == [
        "3 partitions, 6 wanted",
        "replication factor 1, 3 wanted",
        "min.insync.replicas 1, 2 wanted",
    ]
    assert await describe_topics(bootstrap) == before


def test_the_command_exits_3_on_a_weaker_topic_and_0_when_it_fits(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in stack.kafka.env().items():  # the admin principal, as dev.env gives it
        monkeypatch.setenv(name, value)
    bootstrap = ["--bootstrap-servers", stack.kafka_bootstrap_servers]
    local = ["--replication-factor", "1", "--min-insync-replicas", "1"]
    assert topics.main([*bootstrap, *local]) == 0
    assert topics.main([*bootstrap, *local, "--partitions", "4"]) == WEAKER_EXIT_STATUS


def test_describe_is_usable_outside_an_event_loop(stack: Stack) -> None:
    states = asyncio.run(describe_topics(stack.kafka, [topics.TIERS]))
    assert [s.name for s in states] == [topics.TIERS]
