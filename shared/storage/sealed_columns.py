"""Sealing a column of secrets already stored in clear (`shared.sealing`): what a service's
migration runs when its secrets start being kept sealed, and what a key rotation runs again
(`reseal`: values sealed with a previous key are sealed with the current one)."""

from __future__ import annotations

import os
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.sealing import Keyring, SealingError, is_sealed, keyring_from_environment


def migration_keyring(prefix: str, bind: Connection, table: str, column: str) -> Keyring | None:
    """The key a migration seals with, from its environment; refuses clearly when rows need it
    and it is absent (an empty table needs none)."""
    keyring = keyring_from_environment(os.environ, prefix)
    if keyring is None:
        count = bind.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
        if count:
            raise RuntimeError(
                f"{table}.{column}: {count} row(s) to seal, but {prefix}SECRETS_KEY is not set "
                "in the migration's environment (the same key the service runs with; "
                "docs/operations.md, SECURITY.md)"
            )
    return keyring


def reseal(
    bind: Connection,
    table: str,
    id_column: str,
    column: str,
    context_of: Callable[[str], str],
    keyring: Keyring,
) -> int:
    """Seals every value of `table.column` in clear, and seals again every one sealed with a
    previous key; returns how many rows changed. Row by row under a lock of the table's rows:
    a partner or webhook table is small."""
    rows = bind.execute(
        sa.text(f"SELECT {id_column} AS id, {column} AS value FROM {table} FOR UPDATE")  # noqa: S608
    ).all()
    changed = 0
    for row in rows:
        value: str = row.value
        if not keyring.needs_resealing(value):
            continue
        context = context_of(row.id)
        plain = keyring.unseal(value, context) if is_sealed(value) else value
        bind.execute(
            sa.text(f"UPDATE {table} SET {column} = :sealed WHERE {id_column} = :id"),  # noqa: S608
            {"sealed": keyring.seal(plain, context), "id": row.id},
        )
        changed += 1
    return changed


def unseal_all(
    bind: Connection,
    table: str,
    id_column: str,
    column: str,
    context_of: Callable[[str], str],
    keyring: Keyring | None,
) -> None:
    """A migration's downgrade: the values back in clear (refused without the key when sealed
    values exist)."""
    rows = bind.execute(
        sa.text(f"SELECT {id_column} AS id, {column} AS value FROM {table} FOR UPDATE")  # noqa: S608
    ).all()
    for row in rows:
        if not is_sealed(row.value):
            continue
        if keyring is None:
            raise RuntimeError(f"{table}.{column}: sealed values, but no SECRETS_KEY to open them")
        bind.execute(
            sa.text(f"UPDATE {table} SET {column} = :plain WHERE {id_column} = :id"),  # noqa: S608
            {"plain": keyring.unseal(row.value, context_of(row.id)), "id": row.id},
        )


async def reseal_table(
    database_url: str,
    table: str,
    id_column: str,
    column: str,
    context_of: Callable[[str], str],
    keyring: Keyring,
) -> int:
    """`reseal` in one transaction of its own: what an operator runs after a key rotation,
    before the previous key is dropped (SECURITY.md, "Secrets at rest")."""
    engine = create_async_engine(database_url, hide_parameters=True, pool_size=1)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(
                lambda sync: reseal(sync, table, id_column, column, context_of, keyring)
            )
    finally:
        await engine.dispose()


class SealedColumn:
    """One column of secrets a service keeps sealed, and the process's keyring for it: its
    adapters seal and unseal through it, bootstrap and the command line install the keyring
    from the settings (`use_keyring`) before any row is read or written, and an operator
    reseals it after a key rotation (`reseal_stored`)."""

    def __init__(self, service: str, what: str, table: str, id_column: str, column: str) -> None:
        self.service, self.what = service, what
        self.setting = f"FEDELTA_{service.upper()}_SECRETS_KEY"
        self.table, self.id_column, self.column = table, id_column, column
        self._keyring: Keyring | None = None

    def use_keyring(self, keyring: Keyring | None) -> None:
        self._keyring = keyring

    def keyring(self) -> Keyring:
        if self._keyring is None:
            raise SealingError(f"{self.setting} is not set: {self.what} cannot be read")
        return self._keyring

    def context(self, row_id: str) -> str:
        """The associated data: the row's id, so a value copied to another row does not open."""
        return f"{self.service}.{self.table}.{self.column}/{row_id}"

    def seal(self, row_id: str, secret: str) -> str:
        return self.keyring().seal(secret, self.context(row_id))

    def unseal(self, row_id: str, sealed: str) -> str:
        return self.keyring().unseal(sealed, self.context(row_id))

    async def reseal_stored(self, database_url: str, keyring: Keyring | None) -> int:
        """Seals again with the current key every value sealed with a previous key (and any
        stored in clear); returns how many. Run after a key rotation, before the previous key
        is dropped (SECURITY.md)."""
        if keyring is None:
            raise SealingError(f"{self.setting} is not set")
        return await reseal_table(
            database_url, self.table, self.id_column, self.column, self.context, keyring
        )
