"""Fixtures for the tests that need the real stack. Unit tests use none of these."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from shared.messaging.topics import TopicSettings, ensure_topics
from tests.support.factories import PARTNER
from tests.support.kafka import provision_partners
from tests.support.stack import Stack

# The partners the tests' events name without provisioning them through ingest: announced on
# the partners topic once the stack is up, as ingest would (shared.messaging.partners).
TEST_PARTNERS = (PARTNER, "shop", "other", "p-owner", "p-other", "p-a", "p-b", "p-c")

# No per-example deadline: hypothesis' default (200 ms) times an example, and a loaded 2-core
# machine (CI beside the stack it started) fails a rule's test for being slow, not wrong.
# Performance is measured by the benchmarks, never by a test (README, *Benchmarks*).
settings.register_profile("fedelta", deadline=None)
settings.load_profile("fedelta")


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """Starts PostgreSQL, Kafka and the mail catcher once per session and stops them after,
    unless FEDELTA_TEST_KEEP_STACK=1 (to iterate quickly on one service)."""
    stack = Stack.from_env()
    stack.run("infra.sh", "up")
    try:
        asyncio.run(ensure_topics(stack.kafka, TopicSettings.local()))
        asyncio.run(provision_partners(stack.kafka, TEST_PARTNERS))
        yield stack
    finally:
        if os.environ.get("FEDELTA_TEST_KEEP_STACK") != "1":
            stack.run("infra.sh", "down")


LAYERS = ("tests/unit/", "tests/contract/", "tests/integration/", "tests/e2e/", "tests/chaos/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fast layers first, and the end-to-end service processes only after the in-process
    integration services have stopped: both consume in the same consumer groups.

    This orders layers, never files: within a layer no test depends on the order of the
    files (the e2e check of the logs makes its own traffic rather than running last)."""

    def layer(item: pytest.Item) -> int:
        path = item.nodeid
        return next((i for i, prefix in enumerate(LAYERS) if path.startswith(prefix)), 0)

    items.sort(key=layer)
