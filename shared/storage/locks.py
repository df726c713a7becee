"""PostgreSQL advisory locks, named one way.

A lock is a text name, `"<namespace>/<id>"` (`lock_name`), and its key is PostgreSQL's own
`hashtextextended(name, 0)`, computed by the server: a call here, a set of names locked at
once (`lock_for_transaction`) and an operator in psql all reach the same lock.
Transaction locks end with the transaction; session locks, for work longer than one
transaction, are released by `unlock` (or when the connection closes)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


def lock_name(namespace: str, *parts: str) -> str:
    return "/".join([namespace, *parts])


def _key(name: str) -> sa.ColumnElement[int]:
    return sa.func.hashtextextended(name, 0)


async def lock_for_transaction(conn: AsyncConnection, names: list[str]) -> None:
    """Waits for every named lock, until the transaction ends. Taken in one order (by key),
    so two transactions locking overlapping sets cannot deadlock."""
    if not names:
        return
    await conn.execute(
        sa.text(
            "SELECT pg_advisory_xact_lock(lock_id) FROM ("
            " SELECT DISTINCT hashtextextended(name, 0) AS lock_id"
            " FROM unnest(CAST(:names AS text[])) AS name ORDER BY lock_id) AS locks"
        ),
        {"names": names},
    )


async def try_lock_for_transaction(conn: AsyncConnection, name: str) -> bool:
    """The lock until the transaction ends, or False at once when another holds it."""
    return bool(await conn.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(_key(name)))))


async def try_lock_for_session(conn: AsyncConnection, name: str) -> bool:
    """The lock until `unlock` on this connection, or False at once when another holds it."""
    return bool(await conn.scalar(sa.select(sa.func.pg_try_advisory_lock(_key(name)))))


async def unlock(conn: AsyncConnection, name: str) -> None:
    await conn.scalar(sa.select(sa.func.pg_advisory_unlock(_key(name))))
