"""The signed till calls remembered in ingest's database (`ports.TillSignatures`), shared by
every instance: one INSERT ... ON CONFLICT per call, in its own short transaction, committed
before the call goes to points. Bootstrap builds it."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.ingest.adapters.tables import till_signatures
from services.ingest.domain.till_replays import SignedTillCall
from shared.storage.transactions import in_transaction


class SqlTillSignatures:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def remember(self, call: SignedTillCall) -> bool:
        async def work(conn: AsyncConnection) -> bool:
            return await remember(conn, call)

        return await in_transaction(self._engine, work)


async def remember(conn: AsyncConnection, call: SignedTillCall) -> bool:
    """Inserts the signature, or — when it is there already — touches it only if it came with
    the same key: a row comes back for a new signature and for the same key, none for another
    key. A concurrent first use of the signature waits for the other's commit, then sees it."""
    table = till_signatures
    new = insert(table).values(
        partner_id=call.partner_id,
        signature_digest=call.digest,
        idempotency_key=call.idempotency_key,
        signed_at=call.signed_at,
    )
    statement = new.on_conflict_do_update(
        index_elements=[table.c.partner_id, table.c.signature_digest],
        set_={"idempotency_key": new.excluded.idempotency_key},
        where=table.c.idempotency_key == new.excluded.idempotency_key,
    ).returning(table.c.partner_id)
    return (await conn.execute(statement)).first() is not None
