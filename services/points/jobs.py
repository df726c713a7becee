"""The points jobs: time-driven work, run on a schedule and on demand for an `as_of`.

Each works in chunks, one short transaction per chunk, and is idempotent for an instant: its
effects have ids derived from what caused them, and what it settles it settles once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.points import ports
from services.points.adapters import tables
from services.points.adapters.repositories.jobs import coupon_jobs_repository, jobs_repository
from services.points.domain.coupons import Coupon, expire_all
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
EXPIRE_COUPONS = "expire-coupons"


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


# Where the first chunk of lots starts: before every lot.
FIRST_LOT: ports.LotKey = (datetime(1, 1, 1, tzinfo=UTC), "")


@dataclass(frozen=True)
class WarnExpiring:
    """`points.expiring` once per lot, the program's warning days before it expires, of the
    points it still holds then."""

    program: Program
    clock: Clock
    chunk_size: int = 1000
    name: str = WARN_EXPIRING
    repository: Callable[[AsyncConnection], ports.JobsRepository] = jobs_repository

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]:
        after_lot, warned_total = (as_of, ""), 0
        while True:
            chunk = partial(self._warn_chunk, as_of=as_of, after_lot=after_lot)
            last, taken, warned = await in_transaction(engine, chunk)
            warned_total += warned
            if last is None or taken < self.chunk_size:
                break
            after_lot = last
        return {"as_of": as_of.isoformat(), "warnings": warned_total}

    async def _warn_chunk(
        self, conn: AsyncConnection, as_of: datetime, after_lot: ports.LotKey
    ) -> tuple[ports.LotKey | None, int, int]:
        """Warns of the next chunk of lots expiring within the warning days and not warned
        of yet; (the last lot's key, how many lots it took, how many were warned of)."""
        repo = self.repository(conn)
        until = as_of + timedelta(days=self.program.expiry_warning_days)
        lots = await repo.lots_expiring(
            after=as_of, until=until, after_lot=after_lot, limit=self.chunk_size, unwarned=True
        )
        to_warn = lots_to_warn([d.lot for d in lots], _drawn_so_far(lots), (), as_of, until - as_of)
        new = await repo.record_warnings([lot.entry_id for lot, _ in to_warn], as_of)
        sink, now = CollectingSink(), self.clock.now()
        for lot, left in to_warn:
            if lot.entry_id in new:
                await _announce_expiring(sink, lot, left, now)
        await Outbox(conn, tables.outbox, self.clock).add_all(sink.events)
        return _key_of(lots), len(lots), len(new)


@dataclass(frozen=True)
class ExpirePoints:
    """Records the expiry of what is left of every lot expired by `as_of`, drawn from it like
    any spend, and announces it (`points.expired`)."""

    clock: Clock
    chunk_size: int = 1000
    name: str = EXPIRE_POINTS
    repository: Callable[[AsyncConnection], ports.JobsRepository] = jobs_repository

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]:
        after_lot, expired_total = FIRST_LOT, 0
        while True:
            chunk = partial(self._expire_chunk, as_of=as_of, after_lot=after_lot)
            last, taken, expired = await in_transaction(engine, chunk)
            expired_total += expired
            if last is None or taken < self.chunk_size:
                break
            after_lot = last
        return {"as_of": as_of.isoformat(), "expired_lots": expired_total}

    async def _expire_chunk(
        self, conn: AsyncConnection, as_of: datetime, after_lot: ports.LotKey
    ) -> tuple[ports.LotKey | None, int, int]:
        """Expires the next chunk of lots expired by `as_of` with points left; (the last
        lot's key, how many lots it took, how many expiries were new)."""
        repo = self.repository(conn)
        lots = await repo.lots_expiring(
            after=FIRST_LOT[0],
            until=as_of,
            after_lot=after_lot,
            limit=self.chunk_size,
            unwarned=False,
        )
        # What an expiry takes, no spend or release may change at the same time: the lots'
        # draws are read once their owners are locked.
        await repo.lock_customers({d.lot.customer_id for d in lots})
        allocations, earlier = await repo.draws_on([d.lot.entry_id for d in lots])
        expiries = [
            expiry
            for entries, drawn in _by_owner(lots, earlier, allocations)
            for expiry in expire(entries, drawn, as_of)
        ]
        new = await repo.record([entry for entry, _ in expiries])
        await repo.record_allocations(
            [(e.customer_id, a) for e, taken in expiries if e.entry_id in new for a in taken]
        )
        sink, now = CollectingSink(), self.clock.now()
        for entry, _ in expiries:
            if entry.entry_id in new:
                await _announce_expired(sink, entry, now)
        await Outbox(conn, tables.outbox, self.clock).add_all(sink.events)
        return _key_of(lots), len(lots), len(new)


async def _announce_expiring(
    sink: CollectingSink, lot: LedgerEntry, left: int, now: datetime
) -> None:
    assert lot.expires_at is not None
    await emit(
        sink,
        events.PointsExpiring(customer_id=lot.customer_id, points=left, expires_at=lot.expires_at),
        source=SOURCE,
        customer_id=lot.customer_id,
        time=now,
        cause_id=f"lot/{lot.entry_id}",
        purpose="points-expiring",
    )


async def _announce_expired(sink: CollectingSink, entry: LedgerEntry, now: datetime) -> None:
    await emit(
        sink,
        events.PointsExpired(customer_id=entry.customer_id, points=-entry.points),
        source=SOURCE,
        customer_id=entry.customer_id,
        time=now,
        cause_id=entry.entry_id,
        purpose="points-expired",
    )


def _key_of(lots: Sequence[ports.DrawnLot]) -> ports.LotKey | None:
    """Where the chunk after these lots starts; None when there were none."""
    if not lots:
        return None
    last = lots[-1].lot
    assert last.expires_at is not None
    return (last.expires_at, last.entry_id)


def _drawn_so_far(lots: Sequence[ports.DrawnLot]) -> list[Allocation]:
    """One allocation per lot standing for everything drawn from it so far."""
    return [Allocation("drawn", d.lot.entry_id, d.drawn) for d in lots]


def _by_owner(
    lots: Sequence[ports.DrawnLot],
    earlier: Sequence[LedgerEntry],
    allocations: Sequence[Allocation],
) -> list[tuple[list[LedgerEntry], list[Allocation]]]:
    """Per owner, their lots of the chunk with the expiries already taken from them, and the
    allocations against those lots: what `domain.lots.expire` judges a customer on."""
    entries: dict[str, list[LedgerEntry]] = {}
    owner: dict[str, str] = {}
    for lot in (d.lot for d in lots):
        entries.setdefault(lot.customer_id, []).append(lot)
        owner[lot.entry_id] = lot.customer_id
    for expiry in earlier:
        entries.setdefault(expiry.customer_id, []).append(expiry)
    drawn: dict[str, list[Allocation]] = {customer: [] for customer in entries}
    for allocation in allocations:
        drawn[owner[allocation.lot_id]].append(allocation)
    return [(entries[customer], drawn[customer]) for customer in entries]


def points_jobs(program: Program, clock: Clock) -> list[Job]:
    """In the order `all` runs them: holds lapse and coupons expire first, so their points
    are back in the lots before the warnings count them and the expiries take them."""
    return [
        ActivatePending(),
        LapseHolds(),
        ExpireCoupons(program, clock),
        WarnExpiring(program, clock),
        ExpirePoints(clock),
    ]


@dataclass(frozen=True)
class ExpireCoupons:
    """Marks every coupon still unused at its expiry expired and, with `coupon_expiry:
    refund_points`, gives its points back to the lots they came from, those not expired by
    `as_of` (expired points are never resurrected); announces `coupon.expired`."""

    program: Program
    clock: Clock
    chunk_size: int = 500
    name: str = EXPIRE_COUPONS
    repository: Callable[[AsyncConnection], ports.CouponJobsRepository] = coupon_jobs_repository

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]:
        expired_total = returned_total = 0
        while True:
            chunk = partial(self._expire_chunk, as_of=as_of)
            taken, expired, returned = await in_transaction(engine, chunk)
            expired_total += expired
            returned_total += returned
            if taken < self.chunk_size:
                break
        return {
            "as_of": as_of.isoformat(),
            "expired_coupons": expired_total,
            "points_returned": returned_total,
        }

    async def _expire_chunk(self, conn: AsyncConnection, as_of: datetime) -> tuple[int, int, int]:
        """Expires the next chunk of coupons; (how many it took, how many expired, the points
        given back)."""
        repo = self.repository(conn)
        coupons = await repo.coupons_expired(as_of, self.chunk_size)
        # What goes back to the lots, no spend or expiry may change at the same time.
        await repo.lock_customers({c.customer_id for c in coupons})
        redemption_ids = [c.redemption_id for c in coupons]
        drawn = await repo.allocations_by(redemption_ids)
        entries = await repo.entries_by_id([*redemption_ids, *{a.lot_id for a in drawn}])
        lots = {a.lot_id for a in drawn} & entries.keys()
        lot_expiries = {lot_id: entries[lot_id].expires_at for lot_id in lots}
        refund = self.program.coupon_expiry == "refund_points"
        expired = expire_all(coupons, entries, drawn, lot_expiries, as_of, refund=refund)
        releases = [back for _, back in expired if back is not None]
        new = await repo.record([entry for entry, _ in releases])
        await repo.record_allocations(
            [(e.customer_id, a) for e, given in releases if e.entry_id in new for a in given]
        )
        await repo.save_expired([coupon for coupon, _ in expired])
        sink, now = CollectingSink(), self.clock.now()
        for coupon, _ in expired:
            await _announce_coupon_expired(sink, coupon, now)
        await Outbox(conn, tables.outbox, self.clock).add_all(sink.events)
        returned = sum(c.points_returned or 0 for c, _ in expired)
        return len(coupons), len(expired), returned


async def _announce_coupon_expired(sink: CollectingSink, coupon: Coupon, now: datetime) -> None:
    assert coupon.expired_at is not None
    await emit(
        sink,
        events.CouponExpired(
            coupon_id=coupon.coupon_id,
            customer_id=coupon.customer_id,
            redemption_id=coupon.redemption_id,
            reward_id=coupon.reward_id,
            points_returned=coupon.points_returned or 0,
            expired_at=coupon.expired_at,
        ),
        source=SOURCE,
        customer_id=coupon.customer_id,
        time=now,
        cause_id=coupon.coupon_id,
        purpose="coupon-expired",
    )
