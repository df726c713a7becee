"""The `segments` job's SQL: the quintile breakpoints computed in the database in one statement
over the purchases of the window, and the members in id order, a chunk at a time."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.insights.adapters import tables
from services.insights.adapters.repositories.common import SqlFacts
from services.insights.domain.model import Breakpoints

# Per member who bought in the window (purchases not wholly refunded by the instant): whole
# days since the last purchase, purchases and net spend, then the quintiles of each.
_QUINTILES = sa.text(
    "WITH kept AS ("
    " SELECT p.customer_id, p.occurred_at, p.total - COALESCE(r.refunded, 0) AS net"
    " FROM purchases p LEFT JOIN (SELECT purchase_key, sum(amount) AS refunded FROM refunds"
    " WHERE occurred_at <= :as_of GROUP BY purchase_key) r ON r.purchase_key = p.purchase_key"
    " WHERE p.occurred_at > :start AND p.occurred_at <= :as_of"
    " AND p.total > COALESCE(r.refunded, 0)),"
    " rfm AS (SELECT customer_id,"
    " floor(extract(epoch FROM (:as_of - max(occurred_at))) / 86400) AS recency,"
    " count(*) AS frequency, sum(net) AS monetary FROM kept GROUP BY customer_id)"
    " SELECT count(*) AS members,"
    " percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY recency) AS r,"
    " percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY frequency) AS f,"
    " percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY monetary) AS m"
    " FROM rfm"
)


class SqlJobRepository(SqlFacts):
    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn)
        self._conn = conn

    async def compute_breakpoints(self, as_of: datetime, window: timedelta) -> Breakpoints:
        row = (
            await self._conn.execute(_QUINTILES, {"as_of": as_of, "start": as_of - window})
        ).one()
        found = Breakpoints(
            recency_days=tuple(row.r or ()),
            frequency=tuple(row.f or ()),
            monetary=tuple(float(value) for value in row.m or ()),
            as_of=as_of,
            members=int(row.members),
        )
        values = {
            "id": 1,
            "as_of": as_of,
            "members": found.members,
            "recency_days": list(found.recency_days),
            "frequency": list(found.frequency),
            "monetary": list(found.monetary),
        }
        statement = insert(tables.rfm_breakpoints).values(values)
        await self._conn.execute(
            statement.on_conflict_do_update(index_elements=["id"], set_=values)
        )
        return found

    async def member_ids_after(self, after: str, limit: int) -> list[str]:
        column = tables.members.c.customer_id
        rows = await self._conn.execute(
            sa.select(column).where(column > after).order_by(column).limit(limit)
        )
        return list(rows.scalars())


def job_repository(conn: AsyncConnection) -> SqlJobRepository:
    return SqlJobRepository(conn)
