"""What the finance reports sum up (`usecases/reports.py`): the liability per issuing
partner, the points honoured per partner, and the points spent between partners for the
settlement. Each is one aggregate statement over the ledger, whatever the number of members:
no loop per member or per partner.

Which movements are spends, for the settlement and the points honoured: redemptions, holds
that were captured, and the releases that gave points of those back (a refund of a purchase
paid with points, an unused coupon expired). A release of a hold never captured (its void or
lapse) is left out with its hold. A movement counts at its `occurred_at`; a give-back is
negative. The issuing partner is the lot's `partner_id`, the honouring one the movement's
(migration 0007); None is the program itself."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.points import ports
from services.points.domain.liability import Liability


def reports_repository(conn: AsyncConnection) -> ports.ReportsRepository:
    return SqlReportsRepository(conn)


class SqlReportsRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def liability(self, as_of: datetime) -> list[Liability]:
        """Each partner's points as of `as_of`, by partner id, in one query."""
        rows = await self._conn.execute(_LIABILITY, {"as_of": as_of})
        return [
            Liability(
                partner_id=row.partner_id,
                issued=int(row.issued),
                spent=int(row.spent),
                expired=int(row.expired),
                reversed=int(row.reversed),
                debt=int(row.debt),
            )
            for row in rows
        ]

    async def honoured(self, as_of: datetime) -> dict[str | None, int]:
        rows = await self._conn.execute(_HONOURED, {"as_of": as_of})
        return {row.honoured_by: int(row.points) for row in rows}

    async def spent_between(
        self, start: datetime, end: datetime
    ) -> dict[tuple[str | None, str | None], int]:
        rows = await self._conn.execute(_SPENT_BETWEEN, {"start": start, "end": end})
        return {(row.issued_by, row.honoured_by): int(row.points) for row in rows}


# The spends (see the module's docstring), as a condition on a movement `m`, written out in
# each statement. A hold's releases are `<hold id>:void` and `<hold id>:lapse`; every other
# release gives back a spend that counts (a refund's `tender:<refund>`, a coupon's
# `<redemption id>:coupon-expired`). `m.kind IN (...)` is the partial index's predicate.
_SPENT_BETWEEN = sa.text(
    "SELECT l.partner_id AS issued_by, m.partner_id AS honoured_by, sum(a.points) AS points"
    " FROM ledger_entries m"
    " JOIN allocations a ON a.entry_id = m.entry_id"
    " JOIN ledger_entries l ON l.entry_id = a.lot_id"
    " WHERE m.occurred_at >= :start AND m.occurred_at < :end"
    " AND m.kind IN ('redeem', 'hold', 'release')"
    " AND (m.kind = 'redeem'"
    " OR (m.kind = 'hold' AND EXISTS (SELECT 1 FROM holds h WHERE h.hold_id = m.entry_id"
    " AND h.status = 'captured'))"
    " OR (m.kind = 'release' AND NOT EXISTS (SELECT 1 FROM holds h"
    " WHERE h.hold_id = split_part(m.entry_id, ':', 1) AND h.status <> 'captured')))"
    " GROUP BY l.partner_id, m.partner_id"
    " HAVING sum(a.points) <> 0"
)

_HONOURED = sa.text(
    "SELECT m.partner_id AS honoured_by, sum(a.points) AS points"
    " FROM ledger_entries m"
    " JOIN allocations a ON a.entry_id = m.entry_id"
    " WHERE m.occurred_at <= :as_of"
    " AND m.kind IN ('redeem', 'hold', 'release')"
    " AND (m.kind = 'redeem'"
    " OR (m.kind = 'hold' AND EXISTS (SELECT 1 FROM holds h WHERE h.hold_id = m.entry_id"
    " AND h.status = 'captured'))"
    " OR (m.kind = 'release' AND NOT EXISTS (SELECT 1 FROM holds h"
    " WHERE h.hold_id = split_part(m.entry_id, ':', 1) AND h.status <> 'captured')))"
    " GROUP BY m.partner_id"
    " HAVING sum(a.points) <> 0"
)

# A lot belongs to the partner that reported its purchase (the purchase's lot, its campaign
# lot, and what staff released of their held parts), else (bonuses, adjustments) to the
# partner the customer enrolled at. A refund's debt belongs to the partner of the purchase
# refunded. Movements count by when they happened, so a date in the past gives the
# liability as it stood then.
_LIABILITY = sa.text(
    "WITH lots AS ("
    " SELECT l.entry_id, l.points,"
    " coalesce(p.partner_id, c.partner_id, 'unknown') AS partner_id"
    " FROM ledger_entries l"
    " LEFT JOIN purchases p ON l.kind = 'earn' AND 'purchase:' || p.purchase_key ="
    " regexp_replace(regexp_replace(l.entry_id, '^released:held:', ''), '\\:campaign$', '')"
    " LEFT JOIN customers c ON c.customer_id = l.customer_id"
    " WHERE l.kind IN ('earn', 'bonus', 'adjust') AND l.points > 0"
    " AND l.occurred_at <= :as_of"
    "), moves AS ("
    " SELECT lots.partner_id, lots.points AS issued, 0 AS spent, 0 AS expired, 0 AS reversed,"
    " 0 AS debt"
    " FROM lots"
    " UNION ALL"
    " SELECT lots.partner_id, 0,"
    " CASE WHEN m.kind IN ('redeem', 'hold', 'release', 'adjust') THEN a.points ELSE 0 END,"
    " CASE WHEN m.kind = 'expire' THEN a.points ELSE 0 END,"
    " CASE WHEN m.kind = 'reverse' THEN a.points ELSE 0 END, 0"
    " FROM allocations a JOIN ledger_entries m ON m.entry_id = a.entry_id"
    " JOIN lots ON lots.entry_id = a.lot_id"
    " WHERE m.occurred_at <= :as_of"
    " UNION ALL"
    " SELECT p.partner_id, 0, 0, 0, 0,"
    " greatest(-l.points - coalesce((SELECT sum(a.points) FROM allocations a"
    " WHERE a.entry_id = l.entry_id), 0), 0)"
    " FROM ledger_entries l JOIN refunds r ON l.entry_id = 'refund:' || r.refund_key"
    " JOIN purchases p ON p.purchase_key = r.purchase_key"
    " WHERE l.kind = 'reverse' AND l.occurred_at <= :as_of"
    ") SELECT partner_id, sum(issued) AS issued, sum(spent) AS spent,"
    " sum(expired) AS expired, sum(reversed) AS reversed, sum(debt) AS debt"
    " FROM moves GROUP BY partner_id ORDER BY partner_id"
)
