"""The signed calls without an id of their own remembered in ingest's database
(`ports.TillSignatures`, `domain/till_replays.py`), shared by every instance: one INSERT ... ON
CONFLICT per call. A till's call remembers in its own short transaction, committed before the
call goes to points; a profile change or erasure in its own transaction (`remember`). A call
without a key is kept with the empty key, which no Idempotency-Key is (they have at least one
character), and which never passes again. Bootstrap builds it."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.ingest.adapters.tables import till_signatures
from services.ingest.domain.till_replays import SignedCall
from shared.storage.transactions import in_transaction

_NO_KEY = ""


class SqlTillSignatures:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def remember(self, call: SignedCall) -> bool:
        async def work(conn: AsyncConnection) -> bool:
            return await remember(conn, call)

        return await in_transaction(self._engine, work)


async def remember(conn: AsyncConnection, call: SignedCall) -> bool:
    """Inserts the signature, or — when it is there already — touches it only if it came with
    the same key (`till_replays.passes_again`): a row comes back for a new signature and for
    the same key, none for another key or for no key. A concurrent first use of the signature
    waits for the other's commit, then sees it."""
    table = till_signatures
    new = insert(table).values(
        partner_id=call.partner_id,
        signature_digest=call.digest,
        idempotency_key=call.idempotency_key or _NO_KEY,
        signed_at=call.signed_at,
    )
    statement = new.on_conflict_do_update(
        index_elements=[table.c.partner_id, table.c.signature_digest],
        set_={"idempotency_key": new.excluded.idempotency_key},
        where=sa.and_(
            table.c.idempotency_key == new.excluded.idempotency_key,
            new.excluded.idempotency_key != _NO_KEY,
        ),
    ).returning(table.c.partner_id)
    return (await conn.execute(statement)).first() is not None
