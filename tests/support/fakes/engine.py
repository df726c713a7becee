"""An engine for the jobs' unit tests: `in_transaction` gets a connection that records what
the outbox writes through it (its event ids), and counts the transactions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.storage.batches import TEXT_SEPARATOR


@dataclass
class FakeJobConnection:
    outbox_ids: list[str] = field(default_factory=list)

    async def execute(self, statement: Any, params: Mapping[str, Any] | None = None) -> None:
        """Only the outbox's one statement reaches the connection in these tests."""
        assert params is not None and "ids" in params, "a job's repository is the fake's"
        # The ids as `shared.storage.batches.texts` bound them: each followed by a separator.
        self.outbox_ids.extend(params["ids"].split(TEXT_SEPARATOR)[:-1])


@dataclass
class FakeJobEngine:
    conn: FakeJobConnection = field(default_factory=FakeJobConnection)
    transactions: int = 0

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[FakeJobConnection]:
        self.transactions += 1
        yield self.conn

    def as_engine(self) -> AsyncEngine:
        return cast(AsyncEngine, self)
