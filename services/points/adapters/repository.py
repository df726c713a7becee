"""The ledger repository: the domain's view of the points database."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.points.adapters.tables import customer_tiers, customers, ledger_entries
from services.points.domain.model import EntryKind, LedgerEntry
from shared.db import insert_if_absent


class LedgerRepository(Protocol):
    async def add_customer(self, customer_id: str, partner_id: str, enrolled_at: datetime) -> bool:
        """False when the customer was already known."""
        ...

    async def record(self, entry: LedgerEntry) -> bool:
        """False when an entry with this id is already in the ledger."""
        ...

    async def entries(self, customer_id: str) -> list[LedgerEntry]: ...

    async def set_tier(self, customer_id: str, tier: str, effective_at: datetime) -> None: ...


class SqlLedgerRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add_customer(self, customer_id: str, partner_id: str, enrolled_at: datetime) -> bool:
        return await insert_if_absent(
            self._conn,
            customers,
            dict(customer_id=customer_id, partner_id=partner_id, enrolled_at=enrolled_at),
        )

    async def is_known(self, customer_id: str) -> bool:
        known_customer = sa.exists().where(customers.c.customer_id == customer_id)
        has_entries = sa.exists().where(ledger_entries.c.customer_id == customer_id)
        return bool(await self._conn.scalar(sa.select(sa.or_(known_customer, has_entries))))

    async def record(self, entry: LedgerEntry) -> bool:
        return await insert_if_absent(
            self._conn,
            ledger_entries,
            dict(
                entry_id=entry.entry_id,
                customer_id=entry.customer_id,
                kind=entry.kind.value,
                points=entry.points,
                reason=entry.reason,
                occurred_at=entry.occurred_at,
                available_at=entry.available_at,
                expires_at=entry.expires_at,
                purchase_id=entry.purchase_id,
            ),
            key=["entry_id"],
        )

    async def entries(self, customer_id: str) -> list[LedgerEntry]:
        rows = await self._conn.execute(
            sa.select(ledger_entries)
            .where(ledger_entries.c.customer_id == customer_id)
            .order_by(ledger_entries.c.seq)
        )
        return [_entry(row) for row in rows]

    async def page(
        self, customer_id: str, *, limit: int, before_seq: int | None
    ) -> list[tuple[int, LedgerEntry]]:
        """Newest first; `before_seq` is the cursor of the previous page."""
        query = sa.select(ledger_entries).where(ledger_entries.c.customer_id == customer_id)
        if before_seq is not None:
            query = query.where(ledger_entries.c.seq < before_seq)
        rows = await self._conn.execute(query.order_by(ledger_entries.c.seq.desc()).limit(limit))
        return [(row.seq, _entry(row)) for row in rows]

    async def set_tier(self, customer_id: str, tier: str, effective_at: datetime) -> None:
        statement = insert(customer_tiers).values(
            customer_id=customer_id, tier=tier, effective_at=effective_at
        )
        # Tier events may arrive out of order across partitions: the latest change wins.
        await self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=["customer_id"],
                set_={
                    "tier": statement.excluded.tier,
                    "effective_at": statement.excluded.effective_at,
                },
                where=customer_tiers.c.effective_at <= statement.excluded.effective_at,
            )
        )


def _entry(row: sa.Row[tuple[object, ...]]) -> LedgerEntry:
    return LedgerEntry(
        entry_id=row.entry_id,
        customer_id=row.customer_id,
        kind=EntryKind(row.kind),
        points=row.points,
        reason=row.reason,
        occurred_at=row.occurred_at,
        available_at=row.available_at,
        expires_at=row.expires_at,
        purchase_id=row.purchase_id,
    )
