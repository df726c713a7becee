"""What the points jobs read and write: the lots expiring, their warnings, and the holds
that timed out; a chunk of lots at a time, read in (expiry, id) order from where the last
chunk ended, their owners' lots locked while an expiry takes from them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from services.points import ports
from services.points.adapters.repositories.catalogue import coupon_of
from services.points.adapters.repositories.common import SqlHolds, SqlLedger, entry_of, hold_of
from services.points.adapters.tables import coupons, holds, ledger_entries
from services.points.domain.coupons import Coupon, CouponStatus
from services.points.domain.holds import Hold, HoldStatus
from services.points.domain.lots import Allocation
from services.points.domain.model import LedgerEntry


def jobs_repository(conn: AsyncConnection) -> ports.JobsRepository:
    return SqlJobsRepository(conn)


def coupon_jobs_repository(conn: AsyncConnection) -> ports.CouponJobsRepository:
    return SqlCouponJobsRepository(conn)


class SqlJobsRepository(SqlLedger, SqlHolds):
    async def lots_expiring(
        self,
        *,
        after: datetime,
        until: datetime,
        after_lot: ports.LotKey,
        limit: int,
        unwarned: bool,
    ) -> list[ports.DrawnLot]:
        rows = await self._conn.execute(
            _LOTS_EXPIRING,
            {
                "after": after,
                "until": until,
                "key_at": after_lot[0],
                "key_id": after_lot[1],
                "limit": limit,
                "unwarned": unwarned,
            },
        )
        return [ports.DrawnLot(entry_of(row), row.drawn) for row in rows]

    async def draws_on(
        self, lot_ids: Collection[str]
    ) -> tuple[list[Allocation], list[LedgerEntry]]:
        if not lot_ids:
            return [], []
        rows = await self._conn.execute(_DRAWS_ON, {"lot_ids": list(lot_ids)})
        allocations: list[Allocation] = []
        expiries: dict[str, LedgerEntry] = {}
        for row in rows:
            allocations.append(Allocation(row.movement_id, row.lot_id, row.drawn))
            if row.entry_id is not None:
                expiries[row.entry_id] = entry_of(row)
        return allocations, list(expiries.values())

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


# A lot: the kinds and sign of `domain.lots.is_lot`, written as the partial index
# ix_ledger_entries_lots (migration 0006) is, so that PostgreSQL can use it. The chunk is read
# in the index's order from the last one's key; what was drawn from each lot, and whether it
# was warned of, are an index probe each.
_LOTS_EXPIRING = sa.text(
    "SELECT l.*, d.drawn FROM ledger_entries AS l "
    "CROSS JOIN LATERAL (SELECT coalesce(sum(a.points), 0) AS drawn FROM allocations AS a "
    "WHERE a.lot_id = l.entry_id) AS d "
    "WHERE l.kind IN ('earn', 'bonus', 'adjust') AND l.points > 0 "
    "AND l.expires_at > :after AND l.expires_at <= :until "
    "AND (l.expires_at, l.entry_id) > (CAST(:key_at AS timestamptz), CAST(:key_id AS text)) "
    "AND l.points > d.drawn "
    "AND (NOT :unwarned OR NOT EXISTS "
    "(SELECT 1 FROM expiry_warnings AS w WHERE w.lot_id = l.entry_id)) "
    "ORDER BY l.expires_at, l.entry_id LIMIT :limit"
)

# Each allocation against the lots, with the movement that made it when that is an expiry.
_DRAWS_ON = sa.text(
    "SELECT a.entry_id AS movement_id, a.lot_id, a.points AS drawn, m.* "
    "FROM allocations AS a LEFT JOIN ledger_entries AS m "
    "ON m.entry_id = a.entry_id AND m.kind = 'expire' "
    "WHERE a.lot_id = ANY(CAST(:lot_ids AS text[]))"
)


class SqlCouponJobsRepository(SqlLedger):
    """The coupon-expiry job's statements: a chunk of coupons expired unused, the ledger
    entries their refunds start from, and the coupons marked expired, one statement each."""

    async def coupons_expired(self, as_of: datetime, limit: int) -> list[Coupon]:
        rows = await self._conn.execute(
            sa.select(coupons)
            .where(coupons.c.status == CouponStatus.ISSUED.value, coupons.c.expires_at <= as_of)
            .order_by(coupons.c.expires_at, coupons.c.coupon_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [coupon_of(row) for row in rows]

    async def entries_by_id(self, entry_ids: Collection[str]) -> dict[str, LedgerEntry]:
        if not entry_ids:
            return {}
        rows = await self._conn.execute(
            sa.select(ledger_entries).where(
                ledger_entries.c.entry_id == sa.any_(sa.cast(list(entry_ids), ARRAY(sa.Text)))
            )
        )
        return {row.entry_id: entry_of(row) for row in rows}

    async def save_expired(self, expired: Sequence[Coupon]) -> None:
        if not expired:
            return
        await self._conn.execute(
            sa.update(coupons)
            .where(
                coupons.c.coupon_id == sa.bindparam("expired_id"),
                coupons.c.status == CouponStatus.ISSUED.value,
            )
            .values(
                status=CouponStatus.EXPIRED.value,
                expired_at=sa.bindparam("at"),
                points_returned=sa.bindparam("returned"),
            ),
            [
                {"expired_id": c.coupon_id, "at": c.expired_at, "returned": c.points_returned}
                for c in expired
            ],
        )
