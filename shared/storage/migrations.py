"""Alembic glue: each service's migrations/env.py calls `run_env`, and `upgrade_to_head`
applies a service's migrations programmatically (`python -m services.<name> migrate`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_to_head(migrations_dir: Path, database_url: str) -> None:
    command.upgrade(alembic_config(migrations_dir, database_url), "head")


def run_env(target_metadata: sa.MetaData) -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not set: run `python -m services.<name> migrate`"
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(url, target_metadata))


async def _run_online(url: str, target_metadata: sa.MetaData) -> None:
    engine = create_async_engine(url, hide_parameters=True)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run_sync, target_metadata)
    finally:
        await engine.dispose()


def _run_sync(conn: Connection, target_metadata: sa.MetaData) -> None:
    context.configure(connection=conn, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


# Frozen table layouts used by the services' first migrations. Never edit one: a change is a
# new migration in each service, so the history each database went through stays true.
def create_inbox_v1() -> None:
    from alembic import op

    op.create_table(
        "inbox",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def create_outbox_v1() -> None:
    from alembic import op

    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False, unique=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def create_idempotency_keys_v1() -> None:
    from alembic import op

    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


OUTBOX_CHANNEL = "fedelta_outbox"


def event_core_v2(*, inbox: bool = True) -> None:
    """The batched event core: the inbox purged by age needs an index on it, and the outbox
    wakes its relay on commit. A statement-level trigger notifies once per INSERT statement;
    PostgreSQL delivers the notification when (and only if) the transaction commits and
    folds repeats within a transaction into one."""
    from alembic import op

    if inbox:
        op.create_index("ix_inbox_received_at", "inbox", ["received_at"])
    op.execute(
        "CREATE FUNCTION fedelta_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN PERFORM pg_notify('{OUTBOX_CHANNEL}', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION fedelta_outbox_notify()"
    )


def drop_event_core_v2(*, inbox: bool = True) -> None:
    from alembic import op

    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.execute("DROP FUNCTION fedelta_outbox_notify()")
    if inbox:
        op.drop_index("ix_inbox_received_at", "inbox")


def outbox_v3() -> None:
    """The outbox's payload as json, not jsonb: PostgreSQL keeps the text as written instead of
    parsing it into jsonb on insert and printing it back on the relay's read; the event's type
    and traceparent, which the relay puts in the record's headers, in columns of their own
    (null for a tombstone), so the relay reads them without parsing the payload."""
    from alembic import op

    op.execute("ALTER TABLE outbox ADD COLUMN event_type text, ADD COLUMN traceparent text")
    op.execute(
        "UPDATE outbox SET event_type = payload->>'type', traceparent = payload->>'traceparent' "
        "WHERE payload IS NOT NULL"
    )
    op.execute("ALTER TABLE outbox ALTER COLUMN payload TYPE json USING payload::json")


def drop_outbox_v3() -> None:
    from alembic import op

    op.execute("ALTER TABLE outbox ALTER COLUMN payload TYPE jsonb USING payload::jsonb")
    op.execute("ALTER TABLE outbox DROP COLUMN event_type, DROP COLUMN traceparent")
