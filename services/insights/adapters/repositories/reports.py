"""The SQL of the program's KPIs: a few set-based statements over the whole period, each
counting in the database what `domain/kpis.py` turns into ratios (never a row per member in
Python). The period is [start, end); a refund counts once made before the instant the
purchase is looked at from."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.insights.domain.kpis import (
    Interval,
    LiabilityPoint,
    NpsCounts,
    PointsCounts,
    PurchaseCounts,
)

# The purchases of the period (the index on occurred_at), each kept unless its refunds made
# by the end cover it: the kept ones make the active members and the basket.
_PURCHASES = sa.text(
    "WITH refunded AS ("
    " SELECT purchase_key, sum(amount) AS amount FROM refunds WHERE occurred_at < :end"
    " GROUP BY purchase_key),"
    " kept AS ("
    " SELECT p.customer_id, p.total - COALESCE(r.amount, 0) AS net"
    " FROM purchases p LEFT JOIN refunded r ON r.purchase_key = p.purchase_key"
    " WHERE p.occurred_at >= :start AND p.occurred_at < :end),"
    " per_member AS ("
    " SELECT customer_id, count(*) AS bought, sum(net) AS net FROM kept WHERE net > 0"
    " GROUP BY customer_id)"
    " SELECT count(*) AS active_members, count(*) FILTER (WHERE bought >= 2) AS repeat_members,"
    " COALESCE(sum(bought), 0) AS purchases, COALESCE(sum(net), 0) AS net_total"
    " FROM per_member"
)


# Lapsed at the start: a kept purchase (as the lifecycle stage as of the start sees it) at or
# before `lapsed_before` and none after it. Those who bought in the `lapsed_days` before the
# start come from one range of the occurred_at index; only the other members are probed, on
# the (customer_id, occurred_at) index and then the refunds' purchase_key.
_WIN_BACK = sa.text(
    "WITH refunded AS ("
    " SELECT purchase_key, sum(amount) AS amount FROM refunds WHERE occurred_at < :start"
    " GROUP BY purchase_key),"
    " recent AS MATERIALIZED ("
    " SELECT DISTINCT p.customer_id FROM purchases p"
    " LEFT JOIN refunded r ON r.purchase_key = p.purchase_key"
    " WHERE p.occurred_at > :lapsed_before AND p.occurred_at < :start"
    " AND p.total > COALESCE(r.amount, 0)),"
    " lapsed AS ("
    " SELECT m.customer_id FROM members m"
    " WHERE NOT EXISTS (SELECT 1 FROM recent WHERE recent.customer_id = m.customer_id)"
    " AND EXISTS (SELECT 1 FROM purchases p WHERE p.customer_id = m.customer_id"
    " AND p.occurred_at <= :lapsed_before AND p.total > COALESCE((SELECT sum(r.amount)"
    " FROM refunds r WHERE r.purchase_key = p.purchase_key AND r.occurred_at < :start), 0)))"
    " SELECT count(*) AS lapsed_at_start, count(*) FILTER (WHERE EXISTS ("
    " SELECT 1 FROM purchases p WHERE p.customer_id = l.customer_id"
    " AND p.occurred_at >= :start AND p.occurred_at < :end AND p.total > COALESCE(("
    " SELECT sum(r.amount) FROM refunds r WHERE r.purchase_key = p.purchase_key"
    " AND r.occurred_at < :end), 0))) AS won_back"
    " FROM lapsed l"
)
_POINTS = sa.text(
    "SELECT COALESCE(sum(points) FILTER (WHERE kind IN ('earned', 'imported')"
    " OR (kind = 'adjusted' AND points > 0)), 0) AS issued,"
    " COALESCE(-sum(points) FILTER (WHERE kind = 'redeemed'), 0) AS redeemed,"
    " COALESCE(-sum(points) FILTER (WHERE kind = 'expired'), 0) AS expired,"
    " COALESCE(-sum(points) FILTER (WHERE kind = 'reversed'), 0) AS reversed,"
    " COALESCE(-sum(points) FILTER (WHERE kind = 'adjusted' AND points < 0), 0) AS adjusted_out"
    " FROM points_movements WHERE occurred_at >= :start AND occurred_at < :end"
)
# The balance outstanding at the end of each day (or week) of the period: the opening balance
# (every movement before the start) plus a running sum of the period's daily sums. Days are
# UTC's, counted in local-free timestamps so no session time zone or DST moves a boundary;
# the first day may begin before the start (its movements before it are in the opening), the
# last point is at the end itself.
_LIABILITY = sa.text(
    "WITH buckets AS ("
    " SELECT bucket AT TIME ZONE 'UTC' AS starts,"
    " LEAST((bucket + CAST(:step AS interval)) AT TIME ZONE 'UTC',"
    " CAST(:end AS timestamptz)) AS ends"
    " FROM generate_series(date_trunc(CAST(:unit AS text), CAST(:start AS timestamptz)"
    " AT TIME ZONE 'UTC'), CAST(:end AS timestamptz) AT TIME ZONE 'UTC',"
    " CAST(:step AS interval)) AS bucket"
    " WHERE bucket AT TIME ZONE 'UTC' < CAST(:end AS timestamptz)),"
    " moved AS ("
    " SELECT date_trunc(CAST(:unit AS text), occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    " AS starts, sum(points) AS points FROM points_movements"
    " WHERE occurred_at >= :start AND occurred_at < :end GROUP BY 1)"
    " SELECT b.ends AS at, CAST((SELECT COALESCE(sum(points), 0) FROM points_movements"
    " WHERE occurred_at < :start) + COALESCE(sum(m.points) OVER (ORDER BY b.starts), 0)"
    " AS bigint) AS points"
    " FROM buckets b LEFT JOIN moved m ON m.starts = b.starts ORDER BY b.starts"
)
# Members enrolled by the end, each in the tier of their latest change by then.
_TIERS = sa.text(
    "SELECT COALESCE(t.tier, CAST(:entry_tier AS text)) AS tier, count(*) AS members"
    " FROM members m LEFT JOIN ("
    " SELECT DISTINCT ON (customer_id) customer_id, tier FROM tier_history"
    " WHERE effective_at <= :end ORDER BY customer_id, effective_at DESC"
    ") t ON t.customer_id = m.customer_id"
    " WHERE m.enrolled_at <= :end GROUP BY 1"
)
_NPS = sa.text(
    "SELECT count(*) AS responses,"
    " count(*) FILTER (WHERE score >= :promoter_min) AS promoters,"
    " count(*) FILTER (WHERE score > :detractor_max AND score < :promoter_min) AS passives,"
    " count(*) FILTER (WHERE score <= :detractor_max) AS detractors"
    " FROM feedback WHERE kind = 'nps' AND score IS NOT NULL"
    " AND given_at >= :start AND given_at < :end"
)
_STEPS: dict[Interval, timedelta] = {"day": timedelta(days=1), "week": timedelta(weeks=1)}


class SqlReports:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def _row(self, statement: sa.TextClause, **params: Any) -> sa.Row[Any]:
        return (await self._conn.execute(statement, params)).one()

    async def purchase_counts(
        self, start: datetime, end: datetime, lapsed_before: datetime
    ) -> PurchaseCounts:
        """`lapsed_before`: a member whose latest purchase before the start is at or before
        it was lapsed at the start."""
        row = await self._row(_PURCHASES, start=start, end=end)
        lapsed = await self._row(_WIN_BACK, start=start, end=end, lapsed_before=lapsed_before)
        return PurchaseCounts(
            active_members=int(row.active_members),
            repeat_members=int(row.repeat_members),
            purchases=int(row.purchases),
            net_total=Decimal(row.net_total),
            lapsed_at_start=int(lapsed.lapsed_at_start),
            won_back=int(lapsed.won_back),
        )

    async def points_counts(self, start: datetime, end: datetime) -> PointsCounts:
        row = await self._row(_POINTS, start=start, end=end)
        return PointsCounts(
            issued=int(row.issued),
            redeemed=int(row.redeemed),
            expired=int(row.expired),
            reversed=int(row.reversed),
            adjusted_out=int(row.adjusted_out),
        )

    async def liability_trend(
        self, start: datetime, end: datetime, interval: Interval
    ) -> list[LiabilityPoint]:
        rows = await self._conn.execute(
            _LIABILITY, {"start": start, "end": end, "unit": interval, "step": _STEPS[interval]}
        )
        return [LiabilityPoint(at=row.at, points=int(row.points)) for row in rows]

    async def tier_counts(self, end: datetime, entry_tier: str) -> dict[str, int]:
        rows = await self._conn.execute(_TIERS, {"end": end, "entry_tier": entry_tier})
        return {row.tier: int(row.members) for row in rows}

    async def nps_counts(
        self, start: datetime, end: datetime, promoter_min: int, detractor_max: int
    ) -> NpsCounts:
        row = await self._row(
            _NPS,
            start=start,
            end=end,
            promoter_min=promoter_min,
            detractor_max=detractor_max,
        )
        return NpsCounts(
            responses=int(row.responses),
            promoters=int(row.promoters),
            passives=int(row.passives),
            detractors=int(row.detractors),
        )


def reports_repository(conn: AsyncConnection) -> SqlReports:
    return SqlReports(conn)
