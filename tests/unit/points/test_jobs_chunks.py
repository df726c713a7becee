"""The expiry jobs take the lots a chunk at a time, one transaction each, in (expiry, id)
order from where the last chunk ended: over more members than a chunk holds, each lot is
warned of once and expired once, and a second run as of the same instant does nothing."""

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta

from services.points import ports
from services.points.domain.holds import Hold
from services.points.domain.lots import Allocation, is_lot
from services.points.domain.model import EntryKind, LedgerEntry, Program
from services.points.jobs import ExpirePoints, WarnExpiring
from shared.clock import FixedClock
from shared.messaging.events import derived_event_id
from tests.support.fakes.engine import FakeJobEngine

AS_OF = datetime(2026, 3, 1, tzinfo=UTC)
CLOCK = FixedClock(AS_OF)


class FakeJobsLedger:
    """ports.JobsRepository in memory: the ledger, its allocations, the warnings given, and
    what each chunk read and locked."""

    def __init__(self) -> None:
        self.entries: dict[str, LedgerEntry] = {}
        self.allocations: list[tuple[str, Allocation]] = []
        self.warned: set[str] = set()
        self.locked: list[set[str]] = []
        self.reads: list[int] = []

    def lot(self, customer_id: str, name: str, points: int, expires_at: datetime) -> str:
        entry_id = f"{customer_id}/{name}"
        self.entries[entry_id] = LedgerEntry(
            entry_id=entry_id,
            customer_id=customer_id,
            kind=EntryKind.EARN,
            points=points,
            reason="purchase",
            occurred_at=expires_at - timedelta(days=365),
            available_at=expires_at - timedelta(days=365),
            expires_at=expires_at,
        )
        return entry_id

    def left(self, lot_id: str) -> int:
        drawn = sum(a.points for _, a in self.allocations if a.lot_id == lot_id)
        return self.entries[lot_id].points - drawn

    async def record(self, entries: Sequence[LedgerEntry]) -> set[str]:
        new = {e.entry_id for e in entries if e.entry_id not in self.entries}
        for entry in entries:
            self.entries.setdefault(entry.entry_id, entry)
        return new

    async def record_allocations(self, drawn: Sequence[tuple[str, Allocation]]) -> None:
        self.allocations.extend(drawn)

    async def allocations_by(self, entry_ids: Collection[str]) -> list[Allocation]:
        return [a for _, a in self.allocations if a.entry_id in entry_ids]

    async def lock_customers(self, customer_ids: Collection[str]) -> None:
        self.locked.append(set(customer_ids))

    async def lots_expiring(
        self,
        *,
        after: datetime,
        until: datetime,
        after_lot: ports.LotKey,
        limit: int,
        unwarned: bool,
    ) -> list[ports.DrawnLot]:
        lots = sorted(
            (
                lot
                for lot in self.entries.values()
                if is_lot(lot)
                and lot.expires_at is not None
                and after < lot.expires_at <= until
                and (lot.expires_at, lot.entry_id) > after_lot
                and self.left(lot.entry_id) > 0
                and not (unwarned and lot.entry_id in self.warned)
            ),
            key=lambda lot: (lot.expires_at, lot.entry_id),
        )[:limit]
        self.reads.append(len(lots))
        return [ports.DrawnLot(lot, lot.points - self.left(lot.entry_id)) for lot in lots]

    async def draws_on(
        self, lot_ids: Collection[str]
    ) -> tuple[list[Allocation], list[LedgerEntry]]:
        drawn = [a for _, a in self.allocations if a.lot_id in lot_ids]
        movements = {a.entry_id for a in drawn}
        expiries = [
            e
            for e in self.entries.values()
            if e.entry_id in movements and e.kind is EntryKind.EXPIRE
        ]
        return drawn, expiries

    async def record_warnings(self, lot_ids: Sequence[str], warned_at: datetime) -> set[str]:
        new = set(lot_ids) - self.warned
        self.warned |= new
        return new

    async def timed_out_holds(self, as_of: datetime, limit: int) -> list[Hold]:
        return []

    async def save_settled(self, settled: Sequence[Hold]) -> None:
        return None


def members(ledger: FakeJobsLedger, count: int, expires_at: datetime) -> list[str]:
    """`count` members with a lot of 100 expiring at `expires_at`; every third had 30 drawn."""
    lots = [ledger.lot(f"m{n:03d}", "lot", 100, expires_at) for n in range(count)]
    for n, lot in enumerate(lots[::3]):
        owner = ledger.entries[lot].customer_id
        ledger.allocations.append((owner, Allocation(f"{owner}/redeem{n}", lot, 30)))
    return lots


def warn_job(ledger: FakeJobsLedger, chunk_size: int) -> WarnExpiring:
    return WarnExpiring(Program(), CLOCK, chunk_size=chunk_size, repository=lambda _: ledger)


def expire_job(ledger: FakeJobsLedger, chunk_size: int) -> ExpirePoints:
    return ExpirePoints(CLOCK, chunk_size=chunk_size, repository=lambda _: ledger)


async def test_more_members_than_a_chunk_are_each_warned_once_a_chunk_a_transaction() -> None:
    ledger = FakeJobsLedger()
    lots = members(ledger, 10, AS_OF + timedelta(days=10))
    ledger.lot("m900", "later", 100, AS_OF + timedelta(days=31))  # beyond the warning days
    engine = FakeJobEngine()

    summary = await warn_job(ledger, 3).run(engine.as_engine(), AS_OF)

    assert summary["warnings"] == 10
    assert ledger.warned == set(lots)
    assert (ledger.reads, engine.transactions) == ([3, 3, 3, 1], 4)
    assert sorted(engine.conn.outbox_ids) == sorted(
        derived_event_id(f"lot/{lot}", "points-expiring") for lot in lots
    )


async def test_warning_again_as_of_the_same_instant_reads_one_empty_chunk() -> None:
    ledger = FakeJobsLedger()
    members(ledger, 9, AS_OF + timedelta(days=10))
    engine = FakeJobEngine()
    await warn_job(ledger, 3).run(engine.as_engine(), AS_OF)
    assert ledger.reads == [3, 3, 3, 0]  # a full last chunk: the next one finds none

    again = await warn_job(ledger, 3).run(engine.as_engine(), AS_OF)

    assert again["warnings"] == 0
    assert ledger.reads[4:] == [0]
    assert len(engine.conn.outbox_ids) == 9


async def test_more_members_than_a_chunk_are_each_expired_once_of_what_is_left() -> None:
    ledger = FakeJobsLedger()
    lots = members(ledger, 10, AS_OF - timedelta(days=1))
    engine = FakeJobEngine()

    summary = await expire_job(ledger, 4).run(engine.as_engine(), AS_OF)

    assert summary["expired_lots"] == 10
    assert all(ledger.left(lot) == 0 for lot in lots)
    expiries = [e for e in ledger.entries.values() if e.kind is EntryKind.EXPIRE]
    assert sorted(-e.points for e in expiries) == sorted([70] * 4 + [100] * 6)
    assert ledger.reads == [4, 4, 2]
    # Each chunk locks the owners of its own lots, and only those.
    assert [len(locked) for locked in ledger.locked] == [4, 4, 2]
    assert set().union(*ledger.locked) == {ledger.entries[lot].customer_id for lot in lots}
    assert sorted(engine.conn.outbox_ids) == sorted(
        derived_event_id(e.entry_id, "points-expired") for e in expiries
    )

    again = await expire_job(ledger, 4).run(engine.as_engine(), AS_OF)
    assert again["expired_lots"] == 0
    assert len(engine.conn.outbox_ids) == 10


async def test_one_members_lots_split_over_chunks_are_each_expired_once() -> None:
    ledger = FakeJobsLedger()
    lots = [
        ledger.lot("m1", f"lot{n}", 10 * (n + 1), AS_OF - timedelta(days=5 - n)) for n in range(5)
    ]
    summary = await expire_job(ledger, 2).run(FakeJobEngine().as_engine(), AS_OF)

    assert summary["expired_lots"] == 5
    assert ledger.reads == [2, 2, 1]
    assert [ledger.left(lot) for lot in lots] == [0] * 5
    assert sorted(
        e.entry_id for e in ledger.entries.values() if e.kind is EntryKind.EXPIRE
    ) == sorted(f"expiry:{lot}:0" for lot in lots)


async def test_a_lot_given_points_back_after_its_expiry_is_expired_again() -> None:
    ledger = FakeJobsLedger()
    lot = ledger.lot("m1", "lot", 100, AS_OF - timedelta(days=1))
    await expire_job(ledger, 10).run(FakeJobEngine().as_engine(), AS_OF)
    ledger.allocations.append(("m1", Allocation("m1/release", lot, -25)))  # a hold given back

    again = await expire_job(ledger, 10).run(FakeJobEngine().as_engine(), AS_OF)

    assert again["expired_lots"] == 1
    assert f"expiry:{lot}:1" in ledger.entries
    assert ledger.left(lot) == 0
