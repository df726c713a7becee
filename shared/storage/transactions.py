"""The one way to open a transaction that changes state, `in_transaction(engine, work)`, and
the one way to read, `read_snapshot(engine)`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

T = TypeVar("T")

Work = Callable[[AsyncConnection], Awaitable[T]]


async def in_transaction(engine: AsyncEngine, work: Work[T]) -> T:
    """Runs `work` in a transaction and commits it, or rolls it back when `work` raises.

    The pool does not ping a connection before lending it (a round trip per call), so after
    PostgreSQL restarted the first statement on an old connection fails with
    `connection_invalidated`, and the pool drops its other old connections too: `work` runs
    once more, on a fresh connection. Should that fail as well, the error goes up (the API
    answers 503, a consumer or job waits and tries again). `work` must therefore be safe to run
    twice: it is, because what changes state is keyed (a natural id, an Idempotency-Key, an
    event id in the inbox), so a retry after a lost COMMIT finds the first attempt."""
    try:
        async with engine.begin() as conn:
            return await work(conn)
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
        log.warning("database connection lost (%s); retrying once", type(error.orig).__name__)
    async with engine.begin() as conn:
        return await work(conn)


@asynccontextmanager
async def read_snapshot(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for reads whose statements all see the database as of one instant: a
    read-only REPEATABLE READ transaction (begun in the same round trip as the first query).
    An answer built from several queries never mixes before and after a commit made between
    them, such as a tier read before a purchase committed shown beside that purchase's spend."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        yield conn
