"""Transactions that survive a connection PostgreSQL dropped since the pool opened it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

T = TypeVar("T")


async def in_transaction(engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Runs `work` in a transaction and commits it, or rolls it back when `work` raises.

    The pool does not ping a connection before lending it (a round trip per call), so after
    PostgreSQL restarted the first statement on an old connection fails with
    `connection_invalidated`, and the pool drops its other old connections too: `work` runs
    once more, on a fresh connection. Should that fail as well, the error goes up (the API
    answers 503). A lost COMMIT is retried too: every call that comes here is keyed (natural
    id or Idempotency-Key), so its retry finds the first attempt and gives the same answer.
    """
    try:
        async with engine.begin() as conn:
            return await work(conn)
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
        log.warning("database connection lost (%s); retrying once", type(error.orig).__name__)
    async with engine.begin() as conn:
        return await work(conn)
