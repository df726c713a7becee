"""Fixtures of the shared library's integration tests (support.py beside this file has their
helpers): an engine on a service's database, where the outbox, inbox, trigger and advisory
locks are the same as every other's."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.database import engine_for
from tests.support.stack import Stack


@pytest.fixture(scope="module")
async def engine(stack: Stack) -> AsyncIterator[AsyncEngine]:
    """The points database, migrated (any service's would do). A consumer, a relay and its
    listener, and a test's own queries at once need a few connections."""
    async with engine_for(stack, "points", pool_size=5) as engine:
        yield engine
