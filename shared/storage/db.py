"""Database plumbing every service uses: the engine, and the inbox and outbox tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSON, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


def create_engine(database_url: str, *, pool_size: int = 20) -> AsyncEngine:
    # No overflow: overflow connections are closed on return, so a burst above the pool would
    # make PostgreSQL open and close a connection per request; waiting for one is cheaper.
    # No pre-ping either: it costs a round trip per checkout. A connection that died (say,
    # PostgreSQL restarted) fails its statement with `connection_invalidated` instead, which
    # also invalidates the pool's older connections; callers retry that transaction once.
    # hide_parameters: an error's text would otherwise quote the statement's values (emails,
    # phones, signing secrets), and error texts end up in logs and dead-letter headers.
    return create_async_engine(
        database_url, pool_size=pool_size, max_overflow=0, hide_parameters=True
    )


async def insert_if_absent(
    conn: AsyncConnection,
    table: sa.Table,
    values: dict[str, Any],
    *,
    key: Sequence[str] | None = None,
) -> bool:
    """Inserts the row unless it would clash with one already there: on `key` when given,
    else on any primary key or unique constraint. True when the row is new: how effects stay
    idempotent under concurrent writers too."""
    statement = insert(table).values(**values)
    statement = statement.on_conflict_do_nothing(index_elements=list(key) if key else None)
    result = await conn.execute(statement.returning(*table.primary_key.columns))
    return result.first() is not None


def define_inbox(metadata: sa.MetaData) -> sa.Table:
    """Event ids already applied: claimed in the same transaction as the effect."""
    return sa.Table(
        "inbox",
        metadata,
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        # Claims older than the retention period are purged (shared.storage.retention).
        sa.Index("ix_inbox_received_at", "received_at"),
    )


def define_outbox(metadata: sa.MetaData) -> sa.Table:
    """Events written with the state change that caused them, waiting for the relay."""
    return sa.Table(
        "outbox",
        metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False, unique=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        # The event's JSON as written (json, not jsonb: kept as text, so neither the insert
        # nor the relay's read converts it), and beside it what the relay puts in the record's
        # headers (null for a tombstone).
        sa.Column("payload", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_type", sa.Text),
        sa.Column("traceparent", sa.Text),
    )


async def insert_many(
    conn: AsyncConnection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    key: Sequence[str] | None = None,
) -> list[tuple[Any, ...]]:
    """`insert_if_absent` for a set of rows in one round trip (multi-row VALUES): returns the
    primary keys of the rows that were new; a row that clashes with one already there, or with
    an earlier row of the same call, is passed over."""
    if not rows:
        return []
    statement = (
        insert(table)
        .on_conflict_do_nothing(index_elements=list(key) if key else None)
        .returning(*table.primary_key.columns)
    )
    result = await conn.execute(statement, list(rows))
    return [tuple(row) for row in result.all()]
