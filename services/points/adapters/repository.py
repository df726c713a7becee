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

    async def tiers_of(self, customer_ids: Collection[str]) -> dict[str, TierAssignment]:
        """The tier of each of these customers that has one."""
        ...

    async def set_tiers(self, assignments: Sequence[TierAssignment]) -> None:
        """Stores each customer's tier unless the stored one took effect later; at most one
        assignment per customer."""
        ...

    async def campaigns_during(self, earliest: datetime, latest: datetime) -> list[Campaign]:
        """Every campaign running at some instant in [earliest, latest], in one query."""
        ...

    async def referrers_of(self, customer_ids: Collection[str]) -> dict[str, str]:
        """Who referred each of these customers, where the referrer is a known customer and
        not the customer themselves."""
        ...

    async def earned_on(
        self, days: Collection[tuple[str, datetime]]
    ) -> dict[tuple[str, datetime], int]:
        """The purchase points (granted and held) each customer earned on each UTC day
        starting at the given instant; only pairs with some points."""
        ...

    async def record_purchases(self, records: Sequence[PurchaseRecord]) -> None:
        """Keeps what refunds need of each purchase, unless kept already."""
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

    async def tiers_of(self, customer_ids: Collection[str]) -> dict[str, TierAssignment]:
        if not customer_ids:
            return {}
        rows = await self._conn.execute(_TIERS_OF, {"ids": list(customer_ids)})
        return {
            row.customer_id: TierAssignment(row.customer_id, row.tier, row.effective_at)
            for row in rows
        }

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

    async def referrers_of(self, customer_ids: Collection[str]) -> dict[str, str]:
        if not customer_ids:
            return {}
        rows = await self._conn.execute(_REFERRERS_OF, {"ids": list(customer_ids)})
        return {row.customer_id: row.referred_by for row in rows}

    async def earned_on(
        self, days: Collection[tuple[str, datetime]]
    ) -> dict[tuple[str, datetime], int]:
        if not days:
            return {}
        pairs = list(days)
        rows = await self._conn.execute(
            _EARNED_ON,
            {"customers": [c for c, _ in pairs], "days": [d for _, d in pairs]},
        )
        return {(row.customer_id, row.day): int(row.points) for row in rows}

    async def record_purchases(self, records: Sequence[PurchaseRecord]) -> None:
        if not records:
            return
        await self._conn.execute(
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


RULE_SEPARATOR = chr(31)

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

_RECORD_PURCHASES = sa.text(
    "INSERT INTO purchases (purchase_key, customer_id, purchase_id, total, points, partner_id) "
    "SELECT * FROM unnest(CAST(:keys AS text[]), CAST(:customers AS text[]), "
    "CAST(:ids AS text[]), CAST(:totals AS numeric[]), CAST(:points AS integer[]), "
    "CAST(:partners AS text[])) "
    "ON CONFLICT (purchase_key) DO NOTHING"
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
    "FROM unnest(CAST(:customers AS text[]), CAST(:days AS timestamptz[])) AS k(customer_id, day) "
    "JOIN ledger_entries l ON l.customer_id = k.customer_id "
    "AND l.occurred_at >= k.day AND l.occurred_at < k.day + interval '1 day' "
    "AND l.kind IN ('earn', 'held') AND l.entry_id NOT LIKE 'released:%' "
    "GROUP BY k.customer_id, k.day"
)

# A lot belongs to the partner that reported its purchase, else (bonuses, adjustments) to
# the partner the customer enrolled at. Movements count by when they happened, so a date in
# the past gives the liability as it stood then.
_LIABILITY = sa.text(
    "WITH lots AS ("
    " SELECT l.entry_id, l.points,"
    " coalesce(p.partner_id, c.partner_id, 'unknown') AS partner_id"
    " FROM ledger_entries l"
    " LEFT JOIN purchases p ON l.entry_id = 'purchase:' || p.purchase_key"
    " LEFT JOIN customers c ON c.customer_id = l.customer_id"
    " WHERE l.kind IN ('earn', 'bonus', 'adjust') AND l.points > 0"
    " AND l.occurred_at <= :as_of"
    "), moves AS ("
    " SELECT lots.partner_id, lots.points AS issued, 0 AS spent, 0 AS expired, 0 AS reversed"
    " FROM lots"
    " UNION ALL"
    " SELECT lots.partner_id, 0,"
    " CASE WHEN m.kind IN ('redeem', 'hold', 'release', 'adjust') THEN a.points ELSE 0 END,"
    " CASE WHEN m.kind = 'expire' THEN a.points ELSE 0 END,"
    " CASE WHEN m.kind = 'reverse' THEN a.points ELSE 0 END"
    " FROM allocations a JOIN ledger_entries m ON m.entry_id = a.entry_id"
    " JOIN lots ON lots.entry_id = a.lot_id"
    " WHERE m.occurred_at <= :as_of"
    ") SELECT partner_id, sum(issued) AS issued, sum(spent) AS spent,"
    " sum(expired) AS expired, sum(reversed) AS reversed"
    " FROM moves GROUP BY partner_id ORDER BY partner_id"
)

_REFERRERS_OF = sa.text(
    "SELECT c.customer_id, c.referred_by FROM customers c "
    "JOIN customers referrer ON referrer.customer_id = c.referred_by "
    "WHERE c.customer_id = ANY(CAST(:ids AS text[])) AND c.referred_by <> c.customer_id"
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

_TIERS_OF = sa.text(
    "SELECT customer_id, tier, effective_at FROM customer_tiers "
    "WHERE customer_id = ANY(CAST(:ids AS text[]))"
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
