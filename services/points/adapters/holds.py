"""The holds repository: holds placed at the till, and their settlement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.points.adapters.tables import holds
from services.points.domain.holds import Hold, HoldStatus


class SqlHoldRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, hold: Hold) -> None:
        await self._conn.execute(sa.insert(holds).values(**_row(hold)))

    async def get_for_update(self, hold_id: str) -> Hold | None:
        """The hold, locked until the transaction ends: a capture, a void and the lapse job
        settle it one at a time."""
        row = (
            await self._conn.execute(
                sa.select(holds).where(holds.c.hold_id == hold_id).with_for_update()
            )
        ).first()
        return None if row is None else _hold(row)

    async def timed_out(self, as_of: datetime, limit: int) -> list[Hold]:
        """Holds still held at their timeout by `as_of`, locked; those another transaction
        is settling are passed over (it settles them)."""
        rows = await self._conn.execute(
            sa.select(holds)
            .where(holds.c.status == HoldStatus.HELD.value, holds.c.expires_at <= as_of)
            .order_by(holds.c.hold_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_hold(row) for row in rows]

    async def save_settled(self, settled: Sequence[Hold]) -> None:
        if not settled:
            return
        await self._conn.execute(
            sa.update(holds)
            .where(holds.c.hold_id == sa.bindparam("settled_id"))
            .values(status=sa.bindparam("new_status"), settled_at=sa.bindparam("at")),
            [
                {"settled_id": h.hold_id, "new_status": h.status.value, "at": h.settled_at}
                for h in settled
            ],
        )


def _row(hold: Hold) -> dict[str, object]:
    return {
        "hold_id": hold.hold_id,
        "customer_id": hold.customer_id,
        "points": hold.points,
        "reward": hold.reward,
        "created_at": hold.created_at,
        "expires_at": hold.expires_at,
        "status": hold.status.value,
        "settled_at": hold.settled_at,
    }


def _hold(row: sa.Row[tuple[object, ...]]) -> Hold:
    return Hold(
        hold_id=row.hold_id,
        customer_id=row.customer_id,
        points=row.points,
        reward=row.reward,
        created_at=row.created_at,
        expires_at=row.expires_at,
        status=HoldStatus(row.status),
        settled_at=row.settled_at,
    )
