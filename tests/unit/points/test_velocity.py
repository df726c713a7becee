"""The velocity guard: purchase points a day above the ceiling are held, not granted."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.points.domain.model import EntryKind, LedgerEntry, Program, purchase_earning
from services.points.domain.velocity import cap, day_of, next_day, released
from services.points.handlers import Context, apply_batch
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from tests.support.fakes.points import FakeLedger
from tests.support.points import NOW, enrolled, purchase

GUARDED = Program(max_points_per_day=100)


async def apply_all(
    batch: Sequence[CloudEvent], ledger: FakeLedger, program: Program = GUARDED
) -> CollectingSink:
    sink = CollectingSink()
    await apply_batch(batch, Context(ledger=ledger, sink=sink, program=program, now=NOW))
    return sink


def held_points(ledger: FakeLedger) -> list[int]:
    return [e.points for e in ledger.entries("c1") if e.kind is EntryKind.HELD]


async def test_points_above_the_daily_ceiling_are_held_not_granted() -> None:
    ledger = FakeLedger()
    sink = await apply_all([enrolled(), purchase("p1", "70.00"), purchase("p2", "50.00")], ledger)
    assert [e.data["points"] for _, _, e in sink.events] == [100, 70, 30]
    assert held_points(ledger) == [20]
    assert ledger.balance("c1").available == 200


async def test_the_ceiling_counts_earlier_batches_of_the_same_day_only() -> None:
    ledger = FakeLedger()
    await apply_all([enrolled(), purchase("p1", "90.00")], ledger)
    await apply_all([purchase("p2", "30.00", at=NOW - timedelta(minutes=5))], ledger)
    await apply_all([purchase("p3", "60.00", at=NOW - timedelta(days=1))], ledger)
    assert held_points(ledger) == [20]
    assert ledger.balance("c1").available == 100 + 90 + 10 + 60


async def test_a_purchase_applied_again_is_not_held_a_second_time() -> None:
    ledger = FakeLedger()
    await apply_all([enrolled(), purchase("p1", "150.00")], ledger)
    await apply_all([purchase("p1", "150.00")], ledger)
    assert held_points(ledger) == [50]
    assert ledger.balance("c1").available == 200


def test_without_a_ceiling_nothing_is_held() -> None:
    entry_points = 10_000
    earning = _earning(entry_points)
    assert cap(earning, 5_000, 0) == (earning, None)


def test_a_released_earning_is_a_lot_available_from_its_release() -> None:
    _, held = cap(_earning(150), 0, 100)
    assert held is not None
    lot = released(held, now=NOW + timedelta(days=2))
    assert lot is not None
    assert (lot.kind, lot.points, lot.available_at) == (
        EntryKind.EARN,
        50,
        NOW + timedelta(days=2),
    )


def test_a_release_gives_only_what_refunds_did_not_take_back() -> None:
    _, held = cap(_earning(150), 0, 100)
    assert held is not None
    lot = released(held, now=NOW, taken_back=20)
    assert lot is not None and lot.points == 30
    assert released(held, now=NOW, taken_back=50) is None


def _earning(points: int) -> LedgerEntry:

    return purchase_earning(
        GUARDED,
        entry_id="purchase:demo:p1",
        customer_id="c1",
        purchase_id="p1",
        occurred_at=NOW,
        points=points,
        rule_ids=("base",),
        expires_at=NOW + timedelta(days=365),
    )


BERLIN = ZoneInfo("Europe/Berlin")


def test_a_day_starts_at_midnight_in_the_program_time_zone() -> None:
    late = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)  # 00:30 on the 23rd in Berlin
    assert day_of(late) == datetime(2026, 11, 22, tzinfo=UTC)
    assert day_of(late, BERLIN) == datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
    # The day daylight saving ends lasts 25 hours.
    autumn = day_of(datetime(2026, 10, 25, 12, 0, tzinfo=UTC), BERLIN)
    assert next_day(autumn, BERLIN) - autumn == timedelta(hours=25)


async def test_the_ceiling_counts_the_days_of_the_program_time_zone() -> None:
    """Two purchases an hour apart around UTC midnight: one Berlin day, two UTC days."""
    before_midnight = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
    batch = [
        purchase("p1", "80.00", at=before_midnight),
        purchase("p2", "80.00", at=before_midnight + timedelta(hours=1)),
    ]
    in_utc, in_berlin = FakeLedger(), FakeLedger()
    await apply_all(batch, in_utc)
    await apply_all(batch, in_berlin, Program(max_points_per_day=100, time_zone="Europe/Berlin"))
    assert held_points(in_utc) == []
    assert held_points(in_berlin) == [60]
