"""Refunds: proportional, cumulative reversal; debt and its repayment; the return policy."""

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.points.domain.lots import spend
from services.points.domain.model import EntryKind, Program
from services.points.domain.refunds import PurchaseRecord, RefundRecord, points_to_reverse
from services.points.handlers import Context, apply_batch
from shared import events
from shared.events import CloudEvent, new_event
from shared.outbox import CollectingSink
from tests.unit.points.test_handlers import NOW, FakeLedger, enrolled, purchase


def refund(refund_id: str, purchase_id: str, amount: str, customer_id: str = "c1") -> CloudEvent:
    return new_event(
        events.PurchaseRefunded(
            refund_id=refund_id,
            purchase_id=purchase_id,
            partner_id="demo",
            customer_id=customer_id,
            occurred_at=NOW,
            amount=Decimal(amount),
        ),
        source="ingest/demo",
        subject=customer_id,
        time=NOW,
    )


async def apply_all(
    batch: Sequence[CloudEvent],
    ledger: FakeLedger,
    sink: CollectingSink | None = None,
    program: Program | None = None,
) -> CollectingSink:
    sink = sink or CollectingSink()
    context = Context(ledger=ledger, sink=sink, program=program or Program(), now=NOW)
    await apply_batch(batch, context)
    return sink


def reversed_points(sink: CollectingSink) -> list[tuple[str, int]]:
    return [
        (event.data["refund_id"], event.data["points"])
        for _, _, event in sink.events
        if event.type == events.POINTS_REVERSED
    ]


def redeem(ledger: FakeLedger, points: int, redemption_id: str = "r1") -> None:
    entry, drawn = spend(
        ledger.entries("c1"),
        [a for _, a in ledger.allocations],
        kind=EntryKind.REDEEM,
        entry_id=redemption_id,
        customer_id="c1",
        points=points,
        reason="reward",
        now=NOW,
    )
    ledger.ledger[entry.entry_id] = entry
    ledger.allocations.extend(("c1", a) for a in drawn)


def _record(points: int, total: str) -> PurchaseRecord:
    return PurchaseRecord("demo:p1", "c1", "p1", Decimal(total), points, "demo")


def _refunds(*amounts: str) -> list[RefundRecord]:
    return [
        RefundRecord(f"demo:r{n}", "demo:p1", "c1", f"r{n}", Decimal(amount), NOW)
        for n, amount in enumerate(amounts)
    ]


def test_each_refund_reverses_the_difference_to_what_was_reversed_before() -> None:
    due = points_to_reverse(_record(49, "49.99"), _refunds("10.00", "39.99"))
    # floor(49 * 10 / 49.99) = 9, then the whole: 49 - 9.
    assert [points for _, points in due] == [9, 40]


def test_refunds_beyond_the_total_never_reverse_more_than_was_earned() -> None:
    due = points_to_reverse(_record(10, "10.00"), _refunds("10.00", "5.00"))
    assert [points for _, points in due] == [10, 0]


async def test_a_full_refund_reverses_every_point_and_announces_it() -> None:
    ledger = FakeLedger()
    await apply_all([enrolled(), purchase("p1", "49.99")], ledger)
    sink = await apply_all([refund("r1", "p1", "49.99")], ledger)
    assert reversed_points(sink) == [("r1", 49)]
    assert ledger.balance("c1").available == 100
    assert ledger.balance("c1").debt == 0


async def test_partial_refunds_that_add_up_to_the_whole_reverse_every_point() -> None:
    ledger = FakeLedger()
    await apply_all([enrolled(), purchase("p1", "49.99")], ledger)
    first = await apply_all([refund("r1", "p1", "10.00")], ledger)
    second = await apply_all([refund("r2", "p1", "39.99")], ledger)
    assert reversed_points(first) + reversed_points(second) == [("r1", 9), ("r2", 40)]
    assert ledger.balance("c1").available == 100


async def test_a_refund_applied_again_changes_nothing() -> None:
    ledger = FakeLedger()
    await apply_all([enrolled(), purchase("p1", "20.00"), refund("r1", "p1", "20.00")], ledger)
    before = (dict(ledger.ledger), list(ledger.allocations))
    sink = await apply_all([refund("r1", "p1", "20.00"), purchase("p1", "20.00")], ledger)
    assert reversed_points(sink) == []
    assert (dict(ledger.ledger), list(ledger.allocations)) == before


async def test_a_refund_before_its_purchase_is_applied_once_the_purchase_is_there() -> None:
    ledger = FakeLedger()
    early = await apply_all([enrolled(), refund("r1", "p1", "30.00")], ledger)
    assert reversed_points(early) == []
    later = await apply_all([purchase("p1", "30.00")], ledger)
    assert reversed_points(later) == [("r1", 30)]
    assert ledger.balance("c1").available == 100


async def test_pending_points_of_the_purchase_are_reversed_first() -> None:
    ledger = FakeLedger()
    program = Program(pending_days=14)
    await apply_all([enrolled(), purchase("p1", "30.00")], ledger, program=program)
    await apply_all([refund("r1", "p1", "10.00")], ledger, program=program)
    balance = ledger.balance("c1")
    assert (balance.available, balance.pending) == (100, 20)


async def test_points_already_spent_become_debt_that_later_earnings_repay_first() -> None:
    ledger = FakeLedger()
    await apply_all([enrolled(), purchase("p1", "50.00")], ledger)
    redeem(ledger, 150)
    sink = await apply_all([refund("r1", "p1", "50.00")], ledger)
    assert reversed_points(sink) == [("r1", 50)]
    assert (ledger.balance("c1").available, ledger.balance("c1").debt) == (0, 50)
    await apply_all([purchase("p2", "80.00", at=NOW - timedelta(minutes=1))], ledger)
    assert (ledger.balance("c1").available, ledger.balance("c1").debt) == (30, 0)


async def test_within_balance_a_refund_takes_back_only_what_the_lots_hold() -> None:
    ledger = FakeLedger()
    program = Program(refund_policy="within_balance")
    await apply_all([enrolled(), purchase("p1", "50.00")], ledger, program=program)
    redeem(ledger, 120)
    sink = await apply_all([refund("r1", "p1", "50.00")], ledger, program=program)
    assert reversed_points(sink) == [("r1", 30)]
    assert (ledger.balance("c1").available, ledger.balance("c1").debt) == (0, 0)


@settings(max_examples=60, deadline=None)
@given(
    total_cents=st.integers(min_value=100, max_value=1_000_000),
    cuts=st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=5),
    spent_share=st.integers(min_value=0, max_value=100),
    complete=st.booleans(),
)
def test_buy_refund_keep_the_points_is_impossible(
    total_cents: int, cuts: list[int], spent_share: int, complete: bool
) -> None:
    """Whatever was spent in between, refunds never reverse more than the purchase earned,
    and once it is refunded whole the customer is where they would be without it."""
    total = Decimal(total_cents) / 100
    weights = sum(cuts)
    amounts = [
        (total * cut / weights).quantize(Decimal("0.01"), rounding=ROUND_DOWN) for cut in cuts
    ]
    if complete:
        amounts[-1] += total - sum(amounts)
    amounts = [a for a in amounts if a > 0]

    async def scenario() -> None:
        ledger = FakeLedger()
        await apply_all([enrolled(), purchase("p1", str(total))], ledger)
        earned = ledger.balance("c1").available - 100
        to_spend = ledger.balance("c1").available * spent_share // 100
        if to_spend:
            redeem(ledger, to_spend)
        reversed_total = 0
        for n, amount in enumerate(amounts):
            sink = await apply_all([refund(f"r{n}", "p1", str(amount))], ledger)
            reversed_total += sum(points for _, points in reversed_points(sink))
        assert reversed_total <= earned
        balance = ledger.balance("c1")
        if sum(amounts) == total:
            assert reversed_total == earned
            assert balance.available - balance.debt == 100 - to_spend

    asyncio.run(scenario())
