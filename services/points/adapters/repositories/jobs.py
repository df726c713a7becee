"""What the points jobs read and write: the lots expiring, their warnings, and the holds
that timed out; in chunks, a customer's lots locked while an expiry takes from them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from services.points import ports
from services.points.adapters.repositories.common import SqlHolds, SqlLedger, hold_of
from services.points.adapters.tables import expiry_warnings, holds
from services.points.domain.holds import Hold, HoldStatus


def jobs_repository(conn: AsyncConnection) -> ports.JobsRepository:
    return SqlJobsRepository(conn)


class SqlJobsRepository(SqlLedger, SqlHolds):
    async def customers_with_lots_expiring(
        self, *, after: datetime | None, until: datetime, after_customer: str, limit: int
    ) -> list[str]:
        """The next `limit` customers (by id, after `after_customer`) holding a lot with
        points left that expires in (after, until]."""
        rows = await self._conn.execute(
            _CUSTOMERS_WITH_LOTS_EXPIRING,
            {
                "after": after,
                "until": until,
                "after_customer": after_customer,
                "limit": limit,
            },
        )
        return list(rows.scalars())

    async def warned_lots(self, lot_ids: Collection[str]) -> set[str]:
        if not lot_ids:
            return set()
        rows = await self._conn.execute(
            sa.select(expiry_warnings.c.lot_id).where(
                expiry_warnings.c.lot_id == sa.any_(sa.cast(list(lot_ids), ARRAY(sa.Text)))
            )
        )
        return set(rows.scalars())

    async def record_warnings(self, lot_ids: Sequence[str], warned_at: datetime) -> set[str]:
        """Marks the lots warned; the ids that were not marked before."""
        if not lot_ids:
            return set()
        result = await self._conn.execute(
            sa.text(
                "INSERT INTO expiry_warnings (lot_id, warned_at) "
                "SELECT id, CAST(:at AS timestamptz) FROM unnest(CAST(:ids AS text[])) AS id "
                "ON CONFLICT (lot_id) DO NOTHING RETURNING lot_id"
            ),
            {"ids": list(lot_ids), "at": warned_at},
        )
        return set(result.scalars())

    async def timed_out_holds(self, as_of: datetime, limit: int) -> list[Hold]:
        """Holds still held at their timeout by `as_of`, locked; those another transaction
        is settling are passed over (it settles them)."""
        rows = await self._conn.execute(
            sa.select(holds)
            .where(holds.c.status == HoldStatus.HELD.value, holds.c.expires_at <= as_of)
            .order_by(holds.c.hold_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [hold_of(row) for row in rows]


# Lots with points left: their points less what was drawn from them (and given back).
_CUSTOMERS_WITH_LOTS_EXPIRING = sa.text(
    "SELECT DISTINCT l.customer_id FROM ledger_entries l "
    "WHERE l.kind IN ('earn', 'bonus', 'adjust') AND l.points > 0 "
    "AND (CAST(:after AS timestamptz) IS NULL OR l.expires_at > CAST(:after AS timestamptz)) "
    "AND l.expires_at <= :until AND l.customer_id > :after_customer "
    "AND l.points > (SELECT coalesce(sum(a.points), 0) FROM allocations a "
    "WHERE a.lot_id = l.entry_id) "
    "ORDER BY l.customer_id LIMIT :limit"
)
