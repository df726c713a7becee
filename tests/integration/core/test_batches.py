"""`shared.storage.batches` on the real PostgreSQL: a lookup of a batch's keys is one statement
whatever their count, and probes the index once per key of a large table (where `= ANY(:keys)`
of 1,000 keys scans 145,000 purchases: bench/README.md, "Statements")."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.storage.batches import by_keys, texts, unpacked

pytestmark = pytest.mark.integration

ROWS = 200_000  # large enough that scanning the table costs more than probing it
KEYS = 1_000


def _table(name: str) -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),
    )


async def _filled(conn: AsyncConnection) -> sa.Table:
    table = _table(f"batches_{uuid.uuid4().hex[:8]}")
    await conn.execute(
        sa.text(
            f"CREATE TEMP TABLE {table.name} (key text PRIMARY KEY, value integer NOT NULL) "
            "ON COMMIT DROP"
        )
    )
    fill = f"INSERT INTO {table.name} SELECT 'k-' || n, n FROM generate_series(1, {ROWS}) n"
    await conn.execute(sa.text(fill))
    await conn.execute(sa.text(f"ANALYZE {table.name}"))
    return table


async def _plan(conn: AsyncConnection, statement: sa.Select[Any], keys: list[str]) -> str:
    compiled = statement.compile(dialect=conn.dialect)
    rows = await conn.exec_driver_sql(f"EXPLAIN {compiled}", (keys,))
    return "\n".join(row[0] for row in rows)


async def test_a_lookup_of_a_batchs_keys_probes_the_index_and_finds_each_row_once(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        table = await _filled(conn)
        keys = [f"k-{n}" for n in range(1, 2 * KEYS, 2)] + ["absent"]
        statement = by_keys(table, table.c.key)
        rows = (await conn.execute(statement, {"keys": keys})).all()
        assert sorted(row.value for row in rows) == list(range(1, 2 * KEYS, 2))
        plan = await _plan(conn, statement, keys)
        assert "Index" in plan and "Seq Scan" not in plan, plan


_TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\x1d\x1e"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.none() | _TEXT, max_size=20))
async def test_texts_bound_as_one_parameter_come_back_as_they_were(
    engine: AsyncEngine, values: list[str | None]
) -> None:
    async with engine.connect() as conn:
        back = await conn.scalar(sa.text(f"SELECT {unpacked('values')}"), {"values": texts(values)})
    assert (back or []) == values
