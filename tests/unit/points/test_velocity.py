"""The velocity guard: purchase points a day above the ceiling are held, not granted."""

from collections.abc import Sequence
from datetime import timedelta

from services.points.domain.model import EntryKind, LedgerEntry, Program, purchase_earning
from services.points.domain.velocity import cap, released
from services.points.handlers import Context, apply_batch
from shared.events import CloudEvent
from shared.outbox import CollectingSink
from tests.unit.points.test_handlers import NOW, FakeLedger, enrolled, purchase

GUARDED = Program(max_points_per_day=100)


async def apply_all(batch: Sequence[CloudEvent], ledger: FakeLedger) -> CollectingSink:
    sink = CollectingSink()
    await apply_batch(batch, Context(ledger=ledger, sink=sink, program=GUARDED, now=NOW))
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
    assert (lot.kind, lot.points, lot.available_at) == (
        EntryKind.EARN,
        50,
        NOW + timedelta(days=2),
    )


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
