"""SQL the points repositories share: the ledger's writes and set-based reads, the customer
lock, and the rows of entries, campaigns and holds as the domain's values.

Arrays are bound whole and unnested by PostgreSQL, so a statement's text, and its prepared
plan, stays the same whatever the number of rows."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.points.adapters.tables import allocations, holds, ledger_entries
from services.points.domain.earning import Campaign
from services.points.domain.holds import Hold, HoldStatus
from services.points.domain.lots import Allocation
from services.points.domain.model import EntryKind, LedgerEntry
from services.points.domain.offers import PersonalOffer
from shared.storage.batches import texts, unpacked
from shared.storage.locks import lock_for_transaction, lock_name

RULE_SEPARATOR = chr(31)
# The lock of everything that draws on one customer's lots.
CUSTOMER_LOCK = "points-customer"


def customer_lock(customer_id: str) -> str:
    return lock_name(CUSTOMER_LOCK, customer_id)


class SqlLedger:
    """The ledger's statements every side of the service uses."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

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
                "ids": texts([e.entry_id for e in ordered]),
                "customers": texts([e.customer_id for e in ordered]),
                "kinds": texts([e.kind.value for e in ordered]),
                "points": [e.points for e in ordered],
                "reasons": texts([e.reason for e in ordered]),
                "occurred": [e.occurred_at for e in ordered],
                "available": [e.available_at for e in ordered],
                "expires": [e.expires_at for e in ordered],
                "purchases": texts([e.purchase_id for e in ordered]),
                # One text per entry (an array of arrays must be rectangular in PostgreSQL),
                # joined by a control character, which no rule id can hold.
                "rules": texts([RULE_SEPARATOR.join(e.rule_ids) for e in ordered]),
                "partners": texts([e.partner_id for e in ordered]),
                "stores": texts([e.store_id for e in ordered]),
                "rewards": texts([e.reward_id for e in ordered]),
            },
        )
        return set(result.scalars())

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

    async def lock_customers(self, customer_ids: Collection[str]) -> None:
        """The customer lock of each (`lock_customer`), in one order, so two lockers never
        wait in a cycle."""
        await lock_for_transaction(conn=self._conn, names=_customer_locks(customer_ids))

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
            entries[row.customer_id].append(entry_of(row))
        drawn = await self._conn.execute(
            sa.select(allocations.c.entry_id, allocations.c.lot_id, allocations.c.points).where(
                allocations.c.customer_id == sa.any_(ids)
            )
        )
        return entries, [Allocation(r.entry_id, r.lot_id, r.points) for r in drawn]

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


class SqlHolds:
    """The holds' statements the use cases and the jobs share."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

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


def _customer_locks(customer_ids: Collection[str]) -> list[str]:
    return [customer_lock(customer_id) for customer_id in sorted(customer_ids)]


# WITH ORDINALITY and ORDER BY: `seq` is drawn in the order the entries were given.
# The velocity guard's quarter-hour sums (migration 0015) are kept by the insert itself, of the
# entries it added: an entry recorded again adds nothing, and every writer of the ledger keeps
# them. Their predicate is the guard's: kinds `earn` and `held`, not the `released:` twins.
_RECORD = sa.text(
    "WITH added AS ("  # noqa: S608  # unpacked(): ours
    "INSERT INTO ledger_entries (entry_id, customer_id, kind, points, reason, occurred_at, "
    "available_at, expires_at, purchase_id, rule_ids, partner_id, store_id, reward_id) "
    "SELECT entry_id, customer_id, kind, points, reason, occurred_at, available_at, "
    "expires_at, purchase_id, string_to_array(rules, chr(31)), partner_id, store_id, reward_id "
    f"FROM unnest({unpacked('ids')}, {unpacked('customers')}, {unpacked('kinds')}, "
    f"CAST(:points AS integer[]), {unpacked('reasons')}, CAST(:occurred AS timestamptz[]), "
    "CAST(:available AS timestamptz[]), CAST(:expires AS timestamptz[]), "
    f"{unpacked('purchases')}, {unpacked('rules')}, {unpacked('partners')}, "
    f"{unpacked('stores')}, {unpacked('rewards')}) "
    "WITH ORDINALITY AS e(entry_id, customer_id, kind, points, reason, occurred_at, "
    "available_at, expires_at, purchase_id, rules, partner_id, store_id, reward_id, n) "
    "ORDER BY n "
    "ON CONFLICT (entry_id) DO NOTHING "
    "RETURNING entry_id, customer_id, kind, points, occurred_at"
    "), counted AS ("
    "INSERT INTO earned_quarter_hours (customer_id, quarter, points) "
    "SELECT customer_id, date_bin('15 minutes', occurred_at, "
    "TIMESTAMPTZ '2000-01-01 00:00:00+00'), sum(points) FROM added "
    "WHERE kind IN ('earn', 'held') AND entry_id NOT LIKE 'released:%' "
    "GROUP BY 1, 2 ORDER BY 1, 2 "
    "ON CONFLICT (customer_id, quarter) DO UPDATE "
    "SET points = earned_quarter_hours.points + excluded.points"
    ") SELECT entry_id FROM added"
)


def entry_of(row: sa.Row[Any]) -> LedgerEntry:
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
        partner_id=row.partner_id,
        store_id=row.store_id,
        reward_id=row.reward_id,
    )


def campaign_of(row: sa.Row[Any]) -> Campaign:
    return Campaign(
        campaign_id=row.campaign_id,
        name=row.name,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        multiplier=row.multiplier,
        bonus=row.bonus,
        partner_id=row.partner_id,
        store_id=row.store_id,
        category=row.category,
        validity_days=row.validity_days,
        tier=row.tier,
        segment=row.segment,
    )


def offer_of(row: sa.Row[Any]) -> PersonalOffer:
    return PersonalOffer(
        offer_id=row.offer_id,
        customer_id=row.customer_id,
        reason=row.reason,
        name=row.name,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        multiplier=row.multiplier,
        bonus=row.bonus,
    )


def hold_of(row: sa.Row[Any]) -> Hold:
    return Hold(
        hold_id=row.hold_id,
        customer_id=row.customer_id,
        points=row.points,
        reward=row.reward,
        created_at=row.created_at,
        expires_at=row.expires_at,
        status=HoldStatus(row.status),
        settled_at=row.settled_at,
        partner_id=row.partner_id,
        store_id=row.store_id,
    )
