"""An engine on one service's database of the test stack, migrated first: the one fixture body
the integration tests of every service share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.storage.db import create_engine
from tests.support.stack import Stack


@asynccontextmanager
async def engine_for(
    stack: Stack, service: str, *, pool_size: int = 2
) -> AsyncIterator[AsyncEngine]:
    stack.migrate(service)
    engine = create_engine(stack.database_url(service), pool_size=pool_size)
    try:
        yield engine
    finally:
        await engine.dispose()
