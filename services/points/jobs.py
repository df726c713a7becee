"""The points jobs: time-driven work, run on a schedule and on demand for an `as_of`.

Each works in chunks, one short transaction per chunk, and is idempotent for an instant: its
effects have ids derived from what caused them, and what it settles it settles once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.points import ports
from services.points.adapters import tables
from services.points.adapters.repositories.jobs import jobs_repository
from services.points.domain.holds import lapse_all
from services.points.domain.lots import Allocation, expire, lots_to_warn
from services.points.domain.model import LedgerEntry, Program
from shared.clock import Clock
from shared.messaging import events
from shared.messaging.outbox import CollectingSink, Outbox, emit
from shared.runtime.jobs import Job
from shared.storage.transactions import in_transaction

SOURCE = "points"
ACTIVATE_PENDING = "activate-pending"
LAPSE_HOLDS = "lapse-holds"
WARN_EXPIRING = "warn-expiring"
EXPIRE_POINTS = "expire-points"


@dataclass(frozen=True)
class ActivatePending:
    """The contract's job that makes pending points available. A lot is available from its
    `available_at` on, and every balance and spend is derived from the ledger as of its own
    instant, so there is nothing to write: the job exists so that the contract's name runs
    (alone or in `all`) and answers that it changed nothing."""

    name: str = ACTIVATE_PENDING

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]:
        return {"as_of": as_of.isoformat(), "writes": 0}


@dataclass(frozen=True)
class LapseHolds:
    """Gives back the points of every hold not captured nor voided within its timeout."""

    chunk_size: int = 500
    name: str = LAPSE_HOLDS

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]:
        lapsed_total = 0
        while True:
            chunk = partial(self._lapse_chunk, as_of=as_of)
            timed_out, lapsed = await in_transaction(engine, chunk)
            lapsed_total += lapsed
            if timed_out < self.chunk_size:
                break
        return {"as_of": as_of.isoformat(), "lapsed": lapsed_total}

    async def _lapse_chunk(self, conn: AsyncConnection, as_of: datetime) -> tuple[int, int]:
        """Lapses the next chunk of timed-out holds; (how many timed out, how many lapsed)."""
        repo: ports.JobsRepository = jobs_repository(conn)
        timed_out = await repo.timed_out_holds(as_of, self.chunk_size)
        allocations = await repo.allocations_by([h.hold_id for h in timed_out])
        lapsed, releases = lapse_all(timed_out, allocations, as_of)
        await repo.record([entry for entry, _ in releases])
        await repo.record_allocations(
            [(entry.customer_id, a) for entry, given in releases for a in given]
        )
        await repo.save_settled(lapsed)
        return len(timed_out), len(lapsed)


@dataclass(frozen=True)
class WarnExpiring:
    """`points.expiring` once per lot, the program's warning days before it expires, of the
    points it still holds then."""

    program: Program
    clock: Clock
    chunk_size: int = 500
    name: str = WARN_EXPIRING

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]:
        after_customer, warned_total = "", 0
        while True:
            chunk = partial(self._warn_chunk, as_of=as_of, after_customer=after_customer)
            customer_ids, warned = await in_transaction(engine, chunk)
            warned_total += warned
            if len(customer_ids) < self.chunk_size:
                break
            after_customer = customer_ids[-1]
        return {"as_of": as_of.isoformat(), "warnings": warned_total}

    async def _warn_chunk(
        self, conn: AsyncConnection, as_of: datetime, after_customer: str
    ) -> tuple[list[str], int]:
        """Warns of the lots of the next chunk of customers; (those customers, how many lots
        were warned of)."""
        repo = jobs_repository(conn)
        until = as_of + timedelta(days=self.program.expiry_warning_days)
        customer_ids = await repo.customers_with_lots_expiring(
            after=as_of, until=until, after_customer=after_customer, limit=self.chunk_size
        )
        entries, allocations = await repo.ledgers_of(customer_ids)
        lot_ids = [e.entry_id for ledger_of in entries.values() for e in ledger_of]
        warned = await repo.warned_lots(lot_ids)
        drawn = _by_customer(entries, allocations)
        to_warn = [
            lot_and_left
            for customer_id in customer_ids
            for lot_and_left in lots_to_warn(
                entries[customer_id], drawn[customer_id], warned, as_of, until - as_of
            )
        ]
        new = await repo.record_warnings([lot.entry_id for lot, _ in to_warn], as_of)
        sink = CollectingSink()
        for lot, left in to_warn:
            if lot.entry_id in new:
                await self._announce(sink, lot, left)
        await Outbox(conn, tables.outbox, self.clock).add_all(sink.events)
        return customer_ids, len(new)

    async def _announce(self, sink: CollectingSink, lot: LedgerEntry, left: int) -> None:
        assert lot.expires_at is not None
        await emit(
            sink,
            events.PointsExpiring(
                customer_id=lot.customer_id, points=left, expires_at=lot.expires_at
            ),
            source=SOURCE,
            customer_id=lot.customer_id,
            time=self.clock.now(),
            cause_id=f"lot/{lot.entry_id}",
            purpose="points-expiring",
        )


@dataclass(frozen=True)
class ExpirePoints:
    """Records the expiry of what is left of every lot expired by `as_of`, drawn from it like
    any spend, and announces it (`points.expired`)."""

    clock: Clock
    chunk_size: int = 500
    name: str = EXPIRE_POINTS

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]:
        after_customer, expired_total = "", 0
        while True:
            chunk = partial(self._expire_chunk, as_of=as_of, after_customer=after_customer)
            customer_ids, expired = await in_transaction(engine, chunk)
            expired_total += expired
            if len(customer_ids) < self.chunk_size:
                break
            after_customer = customer_ids[-1]
        return {"as_of": as_of.isoformat(), "expired_lots": expired_total}

    async def _expire_chunk(
        self, conn: AsyncConnection, as_of: datetime, after_customer: str
    ) -> tuple[list[str], int]:
        """Expires the lots of the next chunk of customers; (those customers, how many
        expiries were new)."""
        repo = jobs_repository(conn)
        customer_ids = await repo.customers_with_lots_expiring(
            after=None, until=as_of, after_customer=after_customer, limit=self.chunk_size
        )
        # What an expiry takes, no spend may take at the same time.
        await repo.lock_customers(customer_ids)
        entries, allocations = await repo.ledgers_of(customer_ids)
        drawn = _by_customer(entries, allocations)
        expiries = [
            expiry
            for customer_id in customer_ids
            for expiry in expire(entries[customer_id], drawn[customer_id], as_of)
        ]
        new = await repo.record([entry for entry, _ in expiries])
        await repo.record_allocations(
            [(e.customer_id, a) for e, taken in expiries if e.entry_id in new for a in taken]
        )
        sink = CollectingSink()
        for entry, _ in expiries:
            if entry.entry_id in new:
                await emit(
                    sink,
                    events.PointsExpired(customer_id=entry.customer_id, points=-entry.points),
                    source=SOURCE,
                    customer_id=entry.customer_id,
                    time=self.clock.now(),
                    cause_id=entry.entry_id,
                    purpose="points-expired",
                )
        await Outbox(conn, tables.outbox, self.clock).add_all(sink.events)
        return customer_ids, len(new)


def _by_customer(
    entries: dict[str, list[LedgerEntry]], allocations: Sequence[Allocation]
) -> dict[str, list[Allocation]]:
    """Each customer's allocations: those against their own lots."""
    owner = {entry.entry_id: customer for customer, of in entries.items() for entry in of}
    grouped: dict[str, list[Allocation]] = {customer: [] for customer in entries}
    for allocation in allocations:
        if (customer := owner.get(allocation.lot_id)) is not None:
            grouped[customer].append(allocation)
    return grouped


def points_jobs(program: Program, clock: Clock) -> list[Job]:
    """In the order `all` runs them: holds lapse first, so their points are back in the lots
    before the warnings count them and the expiries take them."""
    return [ActivatePending(), LapseHolds(), WarnExpiring(program, clock), ExpirePoints(clock)]
