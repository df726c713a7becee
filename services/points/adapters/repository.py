"""The ledger repository: the domain's view of the points database.

The consumer's side is set-based: each method takes or returns the rows of a whole batch and
costs one statement, whatever the batch's size. Arrays are bound whole and unnested by
PostgreSQL, so a statement's text, and its prepared plan, stays the same for every batch.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.points.adapters.campaigns import campaign_of
from services.points.adapters.tables import (
    allocations,
    campaigns,
    customers,
    expiry_warnings,
    ledger_entries,
    purchases,
    refunds,
)
from services.points.domain.earning import Campaign
from services.points.domain.liability import Liability
from services.points.domain.lots import Allocation
from services.points.domain.model import EntryKind, LedgerEntry, Member, TierAssignment
from services.points.domain.refunds import PurchaseRecord, RefundRecord


class LedgerRepository(Protocol):
    async def add_customers(self, members: Sequence[Member]) -> set[str]:
        """Adds each customer unless already known; the customer ids that were new."""
        ...

    async def record(self, entries: Sequence[LedgerEntry]) -> set[str]:
        """Appends the entries, in order, unless an entry with the same id is in the ledger
        already (or earlier in `entries`); the entry ids that were new."""
        ...

    async def buyers_of(
        self, customer_ids: Collection[str]
    ) -> tuple[dict[str, TierAssignment], dict[str, str]]:
        """In one query, the tier of each of these customers that has one, and who referred
        each, where the referrer is a known customer and not the customer themselves."""
        ...

    async def set_tiers(self, assignments: Sequence[TierAssignment]) -> None:
        """Stores each customer's tier unless the stored one took effect later; at most one
        assignment per customer."""
        ...

    async def campaigns_during(self, earliest: datetime, latest: datetime) -> list[Campaign]:
        """Every campaign running at some instant in [earliest, latest], in one query."""
        ...

    async def earned_on(
        self, days: Collection[tuple[str, datetime, datetime]]
    ) -> dict[tuple[str, datetime], int]:
        """The purchase points (granted and held) each customer earned on each day, given
        as (customer, start, end), keyed by customer and start; only days with some
        points."""
        ...

    async def record_purchases(self, records: Sequence[PurchaseRecord]) -> set[str]:
        """Keeps what refunds need of each purchase, unless kept already; the keys of those
        purchases that have refunds kept (which came before them), in the same statement."""
        ...

    async def purchases_of(self, keys: Collection[str]) -> dict[str, PurchaseRecord]: ...

    async def add_refunds(self, records: Sequence[RefundRecord]) -> None:
        """Keeps each refund, in the order given, unless kept already."""
        ...

    async def refunds_of(self, keys: Collection[str]) -> dict[str, list[RefundRecord]]:
        """The refunds kept of each of these purchases, in the order they came."""
        ...

    async def debtors(self, customer_ids: Collection[str]) -> set[str]:
        """Those of these customers whose reversals took more than their lots covered."""
        ...

    async def lock_customers(self, customer_ids: Collection[str]) -> None: ...

    async def ledgers_of(
        self, customer_ids: Collection[str]
    ) -> tuple[dict[str, list[LedgerEntry]], list[Allocation]]: ...

    async def record_allocations(self, drawn: Sequence[tuple[str, Allocation]]) -> None: ...


class SqlLedgerRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    # -- the consumer's batch --------------------------------------------------------------

    async def add_customers(self, members: Sequence[Member]) -> set[str]:
        if not members:
            return set()
        # In customer_id order: two instances adding the same new customers (during a
        # rebalance) then wait on each other in one order, never in a cycle.
        ordered = sorted(members, key=lambda m: m.customer_id)
        result = await self._conn.execute(
            _ADD_CUSTOMERS,
            {
                "ids": [m.customer_id for m in ordered],
                "partners": [m.partner_id for m in ordered],
                "enrolled": [m.enrolled_at for m in ordered],
                "referrers": [m.referred_by for m in ordered],
            },
        )
        return set(result.scalars())

    async def record(self, entries: Sequence[LedgerEntry]) -> set[str]:
        if not entries:
            return set()
        # Grouped by customer, each customer's entries in the order given: `seq` then orders
        # every customer's ledger as the events came, and concurrent writers of overlapping
        # entries take their locks in one order.
        order = sorted(range(len(entries)), key=lambda i: (entries[i].customer_id, i))
        ordered = [entries[i] for i in order]
        result = await self._conn.execute(
            _RECORD,
            {
                "ids": [e.entry_id for e in ordered],
                "customers": [e.customer_id for e in ordered],
                "kinds": [e.kind.value for e in ordered],
                "points": [e.points for e in ordered],
                "reasons": [e.reason for e in ordered],
                "occurred": [e.occurred_at for e in ordered],
                "available": [e.available_at for e in ordered],
                "expires": [e.expires_at for e in ordered],
                "purchases": [e.purchase_id for e in ordered],
                # One text per entry (an array of arrays must be rectangular in PostgreSQL),
                # joined by a control character, which no rule id can hold.
                "rules": [RULE_SEPARATOR.join(e.rule_ids) for e in ordered],
            },
        )
        return set(result.scalars())

    async def buyers_of(
        self, customer_ids: Collection[str]
    ) -> tuple[dict[str, TierAssignment], dict[str, str]]:
        if not customer_ids:
            return {}, {}
        rows = await self._conn.execute(_BUYERS_OF, {"ids": list(customer_ids)})
        tiers: dict[str, TierAssignment] = {}
        referrers: dict[str, str] = {}
        for row in rows:
            if row.tier is not None:
                tiers[row.customer_id] = TierAssignment(row.customer_id, row.tier, row.effective_at)
            if row.referrer is not None:
                referrers[row.customer_id] = row.referrer
        return tiers, referrers

    async def set_tiers(self, assignments: Sequence[TierAssignment]) -> None:
        if not assignments:
            return
        ordered = sorted(assignments, key=lambda a: a.customer_id)
        await self._conn.execute(
            _SET_TIERS,
            {
                "ids": [a.customer_id for a in ordered],
                "tiers": [a.tier for a in ordered],
                "effective": [a.effective_at for a in ordered],
            },
        )

    async def campaigns_during(self, earliest: datetime, latest: datetime) -> list[Campaign]:
        rows = await self._conn.execute(
            sa.select(campaigns).where(
                campaigns.c.starts_at <= latest, campaigns.c.ends_at > earliest
            )
        )
        return [campaign_of(row) for row in rows]

    async def earned_on(
        self, days: Collection[tuple[str, datetime, datetime]]
    ) -> dict[tuple[str, datetime], int]:
        if not days:
            return {}
        triples = list(days)
        rows = await self._conn.execute(
            _EARNED_ON,
            {
                "customers": [c for c, _, _ in triples],
                "days": [start for _, start, _ in triples],
                "ends": [end for _, _, end in triples],
            },
        )
        return {(row.customer_id, row.day): int(row.points) for row in rows}

    async def record_purchases(self, records: Sequence[PurchaseRecord]) -> set[str]:
        if not records:
            return set()
        found = await self._conn.execute(
            _RECORD_PURCHASES,
            {
                "keys": [r.purchase_key for r in records],
                "customers": [r.customer_id for r in records],
                "ids": [r.purchase_id for r in records],
                "totals": [r.total for r in records],
                "points": [r.points for r in records],
                "partners": [r.partner_id for r in records],
            },
        )
        return set(found.scalars())

    async def purchases_of(self, keys: Collection[str]) -> dict[str, PurchaseRecord]:
        if not keys:
            return {}
        rows = await self._conn.execute(
            sa.select(purchases).where(
                purchases.c.purchase_key == sa.any_(sa.cast(list(keys), ARRAY(sa.Text)))
            )
        )
        return {
            row.purchase_key: PurchaseRecord(
                row.purchase_key,
                row.customer_id,
                row.purchase_id,
                row.total,
                row.points,
                row.partner_id,
            )
            for row in rows
        }

    async def add_refunds(self, records: Sequence[RefundRecord]) -> None:
        if not records:
            return
        await self._conn.execute(
            _ADD_REFUNDS,
            {
                "keys": [r.refund_key for r in records],
                "purchases": [r.purchase_key for r in records],
                "customers": [r.customer_id for r in records],
                "ids": [r.refund_id for r in records],
                "amounts": [r.amount for r in records],
                "occurred": [r.occurred_at for r in records],
            },
        )

    async def refunds_of(self, keys: Collection[str]) -> dict[str, list[RefundRecord]]:
        if not keys:
            return {}
        rows = await self._conn.execute(
            sa.select(refunds)
            .where(refunds.c.purchase_key == sa.any_(sa.cast(list(keys), ARRAY(sa.Text))))
            .order_by(refunds.c.seq)
        )
        found: dict[str, list[RefundRecord]] = {}
        for row in rows:
            found.setdefault(row.purchase_key, []).append(
                RefundRecord(
                    row.refund_key,
                    row.purchase_key,
                    row.customer_id,
                    row.refund_id,
                    row.amount,
                    row.occurred_at,
                )
            )
        return found

    async def debtors(self, customer_ids: Collection[str]) -> set[str]:
        if not customer_ids:
            return set()
        rows = await self._conn.execute(_DEBTORS, {"ids": list(customer_ids)})
        return set(rows.scalars())

    # -- spending --------------------------------------------------------------------------

    async def lock_customer(self, customer_id: str) -> None:
        """Serializes, until the transaction ends, everything that draws on this customer's
        lots: two spends can then never both see the same points left. A transaction-scoped
        advisory lock, as a customer may have lots (purchases) before any enrolment row."""
        await self._conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"),
            {"name": f"points-customer/{customer_id}"},
        )

    async def allocations_of(self, customer_id: str) -> list[Allocation]:
        rows = await self._conn.execute(
            sa.select(allocations.c.entry_id, allocations.c.lot_id, allocations.c.points).where(
                allocations.c.customer_id == customer_id
            )
        )
        return [Allocation(row.entry_id, row.lot_id, row.points) for row in rows]

    async def open_lots(
        self, customer_id: str, now: datetime
    ) -> tuple[list[LedgerEntry], list[Allocation]]:
        """What a spend needs, and no more than that: the customer's lots unexpired at `now`
        with points left, and for each one allocation standing for everything drawn from it
        so far (under the id `DRAWN_BEFORE`). A customer's whole history is not loaded."""
        rows = (await self._conn.execute(_OPEN_LOTS, {"customer": customer_id, "now": now})).all()
        return [_entry(row) for row in rows], [
            Allocation(DRAWN_BEFORE, row.entry_id, int(row.drawn)) for row in rows if row.drawn
        ]

    async def lifetime_and_debt(self, customer_id: str) -> tuple[int, int]:
        """Summed by the database: every point the customer's lots were ever given, and what
        their reversals took beyond what covered them (before repayments are netted out,
        never below 0)."""
        row = (await self._conn.execute(_LIFETIME_AND_DEBT, {"customer": customer_id})).one()
        return int(row.lifetime), max(int(row.debt), 0)

    async def allocations_by(self, entry_ids: Collection[str]) -> list[Allocation]:
        """The allocations these movements made, in one query."""
        if not entry_ids:
            return []
        rows = await self._conn.execute(
            sa.select(allocations.c.entry_id, allocations.c.lot_id, allocations.c.points).where(
                allocations.c.entry_id == sa.any_(sa.cast(list(entry_ids), ARRAY(sa.Text)))
            )
        )
        return [Allocation(row.entry_id, row.lot_id, row.points) for row in rows]

    async def record_allocations(self, drawn: Sequence[tuple[str, Allocation]]) -> None:
        """(customer id, allocation) pairs, in one statement."""
        if not drawn:
            return
        # A debt repaid twice from one lot (points given back to it in between) adds up.
        insert = pg_insert(allocations)
        await self._conn.execute(
            insert.on_conflict_do_update(
                index_elements=[allocations.c.entry_id, allocations.c.lot_id],
                set_={"points": allocations.c.points + insert.excluded.points},
            ),
            [
                {
                    "entry_id": a.entry_id,
                    "lot_id": a.lot_id,
                    "customer_id": customer_id,
                    "points": a.points,
                }
                for customer_id, a in drawn
            ],
        )

    # -- the expiry jobs --------------------------------------------------------------------

    async def lock_customers(self, customer_ids: Collection[str]) -> None:
        """`lock_customer` for each, in one order, so two lockers never wait in a cycle."""
        if not customer_ids:
            return
        await self._conn.execute(
            sa.text(
                "SELECT pg_advisory_xact_lock(hashtextextended('points-customer/' || id, 0)) "
                "FROM unnest(CAST(:ids AS text[])) AS id ORDER BY id"
            ),
            {"ids": sorted(customer_ids)},
        )

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

    async def ledgers_of(
        self, customer_ids: Collection[str]
    ) -> tuple[dict[str, list[LedgerEntry]], list[Allocation]]:
        """These customers' entries (each in ledger order) and allocations, in two queries."""
        ids = sa.cast(list(customer_ids), ARRAY(sa.Text))
        rows = await self._conn.execute(
            sa.select(ledger_entries)
            .where(ledger_entries.c.customer_id == sa.any_(ids))
            .order_by(ledger_entries.c.seq)
        )
        entries: dict[str, list[LedgerEntry]] = {c: [] for c in customer_ids}
        for row in rows:
            entries[row.customer_id].append(_entry(row))
        drawn = await self._conn.execute(
            sa.select(allocations.c.entry_id, allocations.c.lot_id, allocations.c.points).where(
                allocations.c.customer_id == sa.any_(ids)
            )
        )
        return entries, [Allocation(r.entry_id, r.lot_id, r.points) for r in drawn]

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

    # -- the API's reads -------------------------------------------------------------------

    async def is_known(self, customer_id: str) -> bool:
        known_customer = sa.exists().where(customers.c.customer_id == customer_id)
        has_entries = sa.exists().where(ledger_entries.c.customer_id == customer_id)
        return bool(await self._conn.scalar(sa.select(sa.or_(known_customer, has_entries))))

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

    async def lots_drawn_by(self, entry_ids: Collection[str]) -> dict[str, list[Allocation]]:
        """Which lots each of these entries drew from (negative: given back), in one query."""
        drawn: dict[str, list[Allocation]] = {entry_id: [] for entry_id in entry_ids}
        if not drawn:
            return drawn
        rows = await self._conn.execute(
            sa.select(allocations.c.entry_id, allocations.c.lot_id, allocations.c.points)
            .where(allocations.c.entry_id == sa.any_(sa.cast(list(drawn), ARRAY(sa.Text))))
            .order_by(allocations.c.entry_id, allocations.c.lot_id)
        )
        for row in rows:
            drawn[row.entry_id].append(Allocation(row.entry_id, row.lot_id, row.points))
        return drawn


RULE_SEPARATOR = chr(31)
# The stand-in movement of `open_lots`: whatever was drawn from a lot before.
DRAWN_BEFORE = "drawn-before"

_LIFETIME_AND_DEBT = sa.text(
    "SELECT (SELECT coalesce(sum(points), 0) FROM ledger_entries "
    "WHERE customer_id = :customer AND kind IN ('earn', 'bonus', 'adjust') AND points > 0) "
    "AS lifetime, "
    "(SELECT coalesce(sum(-l.points - coalesce((SELECT sum(a.points) FROM allocations a "
    "WHERE a.entry_id = l.entry_id), 0)), 0) FROM ledger_entries l "
    "WHERE l.customer_id = :customer AND l.kind = 'reverse') AS debt"
)

_OPEN_LOTS = sa.text(
    "SELECT l.*, d.drawn FROM ledger_entries l "
    "CROSS JOIN LATERAL (SELECT coalesce(sum(a.points), 0) AS drawn FROM allocations a "
    "WHERE a.lot_id = l.entry_id) d "
    "WHERE l.customer_id = :customer AND l.kind IN ('earn', 'bonus', 'adjust') "
    "AND l.points > 0 AND (l.expires_at IS NULL OR l.expires_at > :now) "
    "AND l.points > d.drawn ORDER BY l.seq"
)

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

# The refunds table is read as it was before the insert (one snapshot): it only answers
# which purchases have refunds waiting, which the insert does not change.
_RECORD_PURCHASES = sa.text(
    "WITH kept AS ("
    "INSERT INTO purchases (purchase_key, customer_id, purchase_id, total, points, partner_id) "
    "SELECT * FROM unnest(CAST(:keys AS text[]), CAST(:customers AS text[]), "
    "CAST(:ids AS text[]), CAST(:totals AS numeric[]), CAST(:points AS integer[]), "
    "CAST(:partners AS text[])) "
    "ON CONFLICT (purchase_key) DO NOTHING) "
    "SELECT DISTINCT r.purchase_key FROM refunds r "
    "WHERE r.purchase_key = ANY(CAST(:keys AS text[]))"
)

# WITH ORDINALITY and ORDER BY: `seq` keeps the order the refunds came in.
_ADD_REFUNDS = sa.text(
    "INSERT INTO refunds (refund_key, purchase_key, customer_id, refund_id, amount, "
    "occurred_at) "
    "SELECT refund_key, purchase_key, customer_id, refund_id, amount, occurred_at "
    "FROM unnest(CAST(:keys AS text[]), CAST(:purchases AS text[]), "
    "CAST(:customers AS text[]), CAST(:ids AS text[]), CAST(:amounts AS numeric[]), "
    "CAST(:occurred AS timestamptz[])) "
    "WITH ORDINALITY AS r(refund_key, purchase_key, customer_id, refund_id, amount, "
    "occurred_at, n) "
    "ORDER BY n "
    "ON CONFLICT (refund_key) DO NOTHING"
)

_DEBTORS = sa.text(
    "SELECT DISTINCT l.customer_id FROM ledger_entries l "
    "WHERE l.customer_id = ANY(CAST(:ids AS text[])) AND l.kind = 'reverse' "
    "AND -l.points > (SELECT coalesce(sum(a.points), 0) FROM allocations a "
    "WHERE a.entry_id = l.entry_id)"
)

# A released earning keeps its held twin in the ledger: the day counts the twin only.
_EARNED_ON = sa.text(
    "SELECT k.customer_id, k.day, sum(l.points) AS points "
    "FROM unnest(CAST(:customers AS text[]), CAST(:days AS timestamptz[]), "
    "CAST(:ends AS timestamptz[])) AS k(customer_id, day, day_end) "
    "JOIN ledger_entries l ON l.customer_id = k.customer_id "
    "AND l.occurred_at >= k.day AND l.occurred_at < k.day_end "
    "AND l.kind IN ('earn', 'held') AND l.entry_id NOT LIKE 'released:%' "
    "GROUP BY k.customer_id, k.day"
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

# A referrer counts when known and not the customer themselves.
_BUYERS_OF = sa.text(
    "SELECT k.id AS customer_id, t.tier, t.effective_at, "
    "CASE WHEN r.customer_id IS NOT NULL AND c.referred_by <> k.id "
    "THEN c.referred_by END AS referrer "
    "FROM unnest(CAST(:ids AS text[])) AS k(id) "
    "LEFT JOIN customer_tiers t ON t.customer_id = k.id "
    "LEFT JOIN customers c ON c.customer_id = k.id "
    "LEFT JOIN customers r ON r.customer_id = c.referred_by "
    "WHERE t.customer_id IS NOT NULL OR r.customer_id IS NOT NULL"
)

_ADD_CUSTOMERS = sa.text(
    "INSERT INTO customers (customer_id, partner_id, enrolled_at, referred_by) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:partners AS text[]), "
    "CAST(:enrolled AS timestamptz[]), CAST(:referrers AS text[])) "
    "ON CONFLICT (customer_id) DO NOTHING RETURNING customer_id"
)

# WITH ORDINALITY and ORDER BY: `seq` is drawn in the order the entries were given.
_RECORD = sa.text(
    "INSERT INTO ledger_entries (entry_id, customer_id, kind, points, reason, occurred_at, "
    "available_at, expires_at, purchase_id, rule_ids) "
    "SELECT entry_id, customer_id, kind, points, reason, occurred_at, available_at, "
    "expires_at, purchase_id, string_to_array(rules, chr(31)) "
    "FROM unnest(CAST(:ids AS text[]), CAST(:customers AS text[]), CAST(:kinds AS text[]), "
    "CAST(:points AS integer[]), CAST(:reasons AS text[]), CAST(:occurred AS timestamptz[]), "
    "CAST(:available AS timestamptz[]), CAST(:expires AS timestamptz[]), "
    "CAST(:purchases AS text[]), CAST(:rules AS text[])) "
    "WITH ORDINALITY AS e(entry_id, customer_id, kind, points, reason, occurred_at, "
    "available_at, expires_at, purchase_id, rules, n) "
    "ORDER BY n "
    "ON CONFLICT (entry_id) DO NOTHING RETURNING entry_id"
)

# Tier events may arrive out of order across partitions: the latest change wins.
_SET_TIERS = sa.text(
    "INSERT INTO customer_tiers (customer_id, tier, effective_at) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:tiers AS text[]), "
    "CAST(:effective AS timestamptz[])) "
    "ON CONFLICT (customer_id) DO UPDATE SET tier = excluded.tier, "
    "effective_at = excluded.effective_at "
    "WHERE customer_tiers.effective_at <= excluded.effective_at"
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
        rule_ids=tuple(row.rule_ids),
    )
