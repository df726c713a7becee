"""`shared.storage.transactions` on the real PostgreSQL: a read sees one instant however many
statements it makes, and cannot write."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.storage.transactions import in_transaction, read_snapshot

pytestmark = pytest.mark.integration


@pytest.fixture
async def table(engine: AsyncEngine) -> AsyncIterator[str]:
    name = f"snapshot_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"CREATE TABLE {name} (n integer NOT NULL)"))
        await conn.execute(sa.text(f"INSERT INTO {name} VALUES (1)"))
    yield name
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"DROP TABLE {name}"))


async def test_a_read_does_not_see_what_commits_between_its_statements(
    engine: AsyncEngine, table: str
) -> None:
    count = sa.text(f"SELECT count(*) FROM {table}")
    async with read_snapshot(engine) as conn:
        before = (await conn.execute(count)).scalar_one()

        async def add(other: AsyncConnection) -> None:
            await other.execute(sa.text(f"INSERT INTO {table} VALUES (2)"))

        await in_transaction(engine, add)
        during = (await conn.execute(count)).scalar_one()
    async with read_snapshot(engine) as conn:
        after = (await conn.execute(count)).scalar_one()
    assert (before, during, after) == (1, 1, 2)


async def test_a_read_cannot_write(engine: AsyncEngine, table: str) -> None:
    async with read_snapshot(engine) as conn:
        with pytest.raises(DBAPIError, match="read-only"):
            await conn.execute(sa.text(f"INSERT INTO {table} VALUES (3)"))
    async with read_snapshot(engine) as conn:
        count = sa.text(f"SELECT count(*) FROM {table}")
        assert (await conn.execute(count)).scalar_one() == 1
