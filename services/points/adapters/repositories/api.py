"""What the points HTTP use cases read and write: a customer's ledger (locked while a spend,
a hold or an adjustment decides), the reports, held earnings, campaigns and holds."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.points import ports
from services.points.adapters.repositories.common import (
    SqlHolds,
    SqlLedger,
    campaign_of,
    customer_lock,
    entry_of,
    hold_of,
    offer_of,
)
from services.points.adapters.tables import (
    adjustments,
    allocations,
    campaigns,
    customers,
    held_decisions,
    holds,
    ledger_entries,
    personal_offers,
)
from services.points.domain.earning import Campaign
from services.points.domain.holds import Hold
from services.points.domain.lots import Allocation
from services.points.domain.model import EntryKind, LedgerEntry
from services.points.domain.offers import PersonalOffer
from shared.storage.locks import lock_for_transaction

# The stand-in movement of `open_lots`: whatever was drawn from a lot before.
DRAWN_BEFORE = "drawn-before"


def ledger_repository(conn: AsyncConnection) -> ports.LedgerRepository:
    return SqlLedgerRepository(conn)


def campaign_repository(conn: AsyncConnection) -> ports.CampaignRepository:
    return SqlCampaignRepository(conn)


def hold_repository(conn: AsyncConnection) -> ports.HoldRepository:
    return SqlHoldRepository(conn)


class SqlLedgerRepository(SqlLedger):
    async def lock_customer(self, customer_id: str) -> None:
        """Serializes, until the transaction ends, everything that draws on this customer's
        lots: two spends can then never both see the same points left. A transaction-scoped
        advisory lock, as a customer may have lots (purchases) before any enrolment row."""
        await lock_for_transaction(self._conn, [customer_lock(customer_id)])

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
        return [entry_of(row) for row in rows], [
            Allocation(DRAWN_BEFORE, row.entry_id, int(row.drawn)) for row in rows if row.drawn
        ]

    async def lifetime_and_debt(self, customer_id: str) -> tuple[int, int]:
        """Summed by the database: every point the customer's lots were ever given, and what
        their reversals took beyond what covered them (before repayments are netted out,
        never below 0)."""
        row = (await self._conn.execute(_LIFETIME_AND_DEBT, {"customer": customer_id})).one()
        return int(row.lifetime), max(int(row.debt), 0)

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
        return [entry_of(row) for row in rows]

    async def page(
        self, customer_id: str, *, limit: int, before_seq: int | None
    ) -> list[tuple[int, LedgerEntry]]:
        """Newest first; `before_seq` is the cursor of the previous page."""
        query = sa.select(ledger_entries).where(ledger_entries.c.customer_id == customer_id)
        if before_seq is not None:
            query = query.where(ledger_entries.c.seq < before_seq)
        rows = await self._conn.execute(query.order_by(ledger_entries.c.seq.desc()).limit(limit))
        return [(row.seq, entry_of(row)) for row in rows]

    async def actors_of(self, entry_ids: Collection[str]) -> dict[str, str]:
        if not entry_ids:
            return {}
        rows = await self._conn.execute(
            sa.select(adjustments.c.adjustment_id, adjustments.c.actor).where(
                adjustments.c.adjustment_id == sa.any_(sa.cast(list(entry_ids), ARRAY(sa.Text)))
            )
        )
        return {row.adjustment_id: row.actor for row in rows}

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

    async def held_earning(self, held_id: str) -> ports.HeldEarning | None:
        row = (
            await self._conn.execute(
                sa.select(ledger_entries).where(
                    ledger_entries.c.entry_id == held_id,
                    ledger_entries.c.kind == EntryKind.HELD.value,
                )
            )
        ).first()
        return None if row is None else ports.HeldEarning(held_id, row.customer_id, row.points)

    async def decide_held(
        self, held: ports.HeldEarning, decision: str, decided_at: datetime
    ) -> datetime | None:
        inserted: datetime | None = await self._conn.scalar(
            pg_insert(held_decisions)
            .values(
                held_id=held.held_id,
                customer_id=held.customer_id,
                decision=decision,
                decided_at=decided_at,
            )
            .on_conflict_do_nothing()
            .returning(held_decisions.c.decided_at)
        )
        return inserted

    async def held_decision(self, held_id: str) -> ports.HeldDecision:
        earlier = (
            await self._conn.execute(
                sa.select(held_decisions).where(held_decisions.c.held_id == held_id)
            )
        ).one()
        return ports.HeldDecision(earlier.decision, earlier.decided_at)

    async def add_adjustment(self, adjustment: ports.Adjustment) -> None:
        await self._conn.execute(adjustments.insert().values(**asdict(adjustment)))


class SqlCampaignRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, campaign: Campaign, created_at: datetime) -> None:
        await self._conn.execute(
            campaigns.insert().values(**asdict(campaign), created_at=created_at)
        )

    async def get(self, campaign_id: str, *, for_update: bool = False) -> Campaign | None:
        query = sa.select(campaigns).where(campaigns.c.campaign_id == campaign_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return None if row is None else campaign_of(row)

    async def list_all(self) -> list[Campaign]:
        rows = await self._conn.execute(
            sa.select(campaigns).order_by(campaigns.c.starts_at, campaigns.c.campaign_id)
        )
        return [campaign_of(row) for row in rows]

    async def replace(self, campaign: Campaign) -> None:
        values = asdict(campaign)
        del values["campaign_id"]
        await self._conn.execute(
            campaigns.update()
            .where(campaigns.c.campaign_id == campaign.campaign_id)
            .values(**values)
        )

    async def offers_of(self, customer_id: str, at: datetime) -> list[PersonalOffer]:
        rows = await self._conn.execute(
            sa.select(personal_offers)
            .where(
                personal_offers.c.customer_id == customer_id,
                personal_offers.c.ends_at > at,
                personal_offers.c.starts_at <= at,
            )
            .order_by(personal_offers.c.starts_at, personal_offers.c.offer_id)
        )
        return [offer_of(row) for row in rows]

    async def delete(self, campaign_id: str) -> bool:
        result = await self._conn.execute(
            campaigns.delete().where(campaigns.c.campaign_id == campaign_id)
        )
        return result.rowcount > 0


class SqlHoldRepository(SqlHolds):
    async def add(self, hold: Hold) -> None:
        await self._conn.execute(sa.insert(holds).values(**_hold_row(hold)))

    async def get_for_update(self, hold_id: str) -> Hold | None:
        """The hold, locked until the transaction ends: a capture, a void and the lapse job
        settle it one at a time."""
        row = (
            await self._conn.execute(
                sa.select(holds).where(holds.c.hold_id == hold_id).with_for_update()
            )
        ).first()
        return None if row is None else hold_of(row)


def _hold_row(hold: Hold) -> dict[str, Any]:
    return {
        "hold_id": hold.hold_id,
        "customer_id": hold.customer_id,
        "points": hold.points,
        "reward": hold.reward,
        "created_at": hold.created_at,
        "expires_at": hold.expires_at,
        "status": hold.status.value,
        "settled_at": hold.settled_at,
        "partner_id": hold.partner_id,
        "store_id": hold.store_id,
    }


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
