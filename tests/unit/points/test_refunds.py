"""Refunds: proportional, cumulative reversal; debt and its repayment; the return policy."""

import asyncio
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.points.domain.lots import expire, spend
from services.points.domain.model import EntryKind, LedgerEntry, Program
from services.points.domain.refunds import PurchaseRecord, RefundRecord, points_to_reverse
from services.points.domain.velocity import released
from shared.messaging import events
from shared.messaging.events import new_event
from shared.messaging.outbox import CollectingSink
from tests.support.fakes.points import FakeLedger
from tests.support.points import NOW, apply_all, basket, double_coffee, enrolled, purchase, refund


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

    unguarded = Program(max_points_per_day=0)  # no part held back: the guard is off

    async def scenario() -> None:
        ledger = FakeLedger()
        await apply_all([enrolled(), purchase("p1", str(total))], ledger, program=unguarded)
        earned = ledger.balance("c1").available - 100
        to_spend = ledger.balance("c1").available * spent_share // 100
        if to_spend:
            redeem(ledger, to_spend)
        reversed_total = 0
        for n, amount in enumerate(amounts):
            sink = await apply_all([refund(f"r{n}", "p1", str(amount))], ledger, program=unguarded)
            reversed_total += sum(points for _, points in reversed_points(sink))
        assert reversed_total <= earned
        balance = ledger.balance("c1")
        if sum(amounts) == total:
            assert reversed_total == earned
            assert balance.available - balance.debt == 100 - to_spend

    asyncio.run(scenario())


# -- refunds meet expiry and the velocity guard ----------------------------------------------


def expire_all(ledger: FakeLedger, at: datetime) -> None:
    """What the expire-points job records as of `at`."""
    for entry, drawn in expire(ledger.entries("c1"), [a for _, a in ledger.allocations], at):
        ledger.ledger[entry.entry_id] = entry
        ledger.allocations.extend(("c1", a) for a in drawn)


async def test_a_refund_never_deducts_the_purchase_points_that_expired_again() -> None:
    ledger = FakeLedger()
    await apply_all([enrolled(), purchase("p1", "100.00", at=NOW - timedelta(days=400))], ledger)
    expire_all(ledger, NOW)  # the welcome bonus is fresh, the purchase's 100 points are gone
    assert ledger.balance("c1").available == 100
    sink = await apply_all([refund("r1", "p1", "100.00")], ledger)
    balance = ledger.balance("c1")
    assert (balance.available, balance.debt) == (100, 0)
    # The reversal is recorded whole, and says what it counted the expired points as.
    assert reversed_points(sink) == [("r1", 100)]
    drawn = [(a.lot_id, a.points) for _, a in ledger.allocations if a.entry_id == "refund:demo:r1"]
    assert drawn == [("expired:purchase:demo:p1", 100)]


async def test_expired_points_count_once_across_partial_refunds_even_before_the_job() -> None:
    """Half the purchase was spent, the other half expired (the job has not run yet): the
    refunds take back the spent half, and the expired half only once."""
    ledger = FakeLedger()
    await apply_all([purchase("p1", "100.00", at=NOW - timedelta(days=400))], ledger)
    ledger.ledger["bonus"] = LedgerEntry(
        "bonus", "c1", EntryKind.BONUS, 500, "welcome", NOW, NOW, NOW + timedelta(days=300)
    )
    spent = spend(
        ledger.entries("c1"),
        [a for _, a in ledger.allocations],
        kind=EntryKind.REDEEM,
        entry_id="r0",
        customer_id="c1",
        points=50,
        reason="reward",
        now=NOW - timedelta(days=100),
    )
    ledger.ledger["r0"] = spent[0]
    ledger.allocations.extend(("c1", a) for a in spent[1])
    assert [a.lot_id for a in spent[1]] == ["purchase:demo:p1"]
    first = await apply_all([refund("r1", "p1", "40.00")], ledger)
    second = await apply_all([refund("r2", "p1", "60.00")], ledger)
    assert reversed_points(first) + reversed_points(second) == [("r1", 40), ("r2", 60)]
    # 50 counted as expired, 50 taken from the bonus: the spent half, no more.
    balance = ledger.balance("c1")
    assert (balance.available, balance.debt) == (450, 0)


async def test_a_refund_takes_the_held_part_first_so_a_release_cannot_bring_it_back() -> None:
    guarded = Program(max_points_per_day=100)
    ledger = FakeLedger()
    await apply_all([purchase("p1", "150.00")], ledger, program=guarded)
    assert ledger.balance("c1").available == 100
    await apply_all([refund("r1", "p1", "50.00")], ledger, program=guarded)
    # The 50 refunded points are the 50 held back: the granted 100 stay, the held part is spent.
    assert ledger.balance("c1").available == 100
    held = ledger.ledger["held:purchase:demo:p1"]
    taken_back = sum(a.points for _, a in ledger.allocations if a.lot_id == held.entry_id)
    assert taken_back == 50
    assert released(held, now=NOW, taken_back=taken_back) is None


async def test_a_refund_beyond_the_held_part_takes_the_rest_from_the_granted_lot() -> None:
    guarded = Program(max_points_per_day=100)
    ledger = FakeLedger()
    await apply_all([purchase("p1", "150.00")], ledger, program=guarded)
    await apply_all([refund("r1", "p1", "90.00")], ledger, program=guarded)
    assert ledger.balance("c1").available == 60  # 90 = 50 held + 40 of the lot


async def test_a_full_refund_takes_back_both_lots_of_a_purchase_and_nothing_else() -> None:
    """A campaign with its own validity splits the purchase's points in two lots; a refund
    takes from both before any other lot."""
    ledger = FakeLedger()
    ledger.campaigns.append(double_coffee(validity_days=60))
    await apply_all([enrolled(), basket("p1")], ledger)
    assert [e.points for e in ledger.entries("c1")] == [100, 30, 10]  # welcome, lot, campaign
    sink = await apply_all([refund("r1", "p1", "30.00")], ledger)
    assert reversed_points(sink) == [("r1", 40)]
    balance = ledger.balance("c1")
    assert (balance.available, balance.debt) == (100, 0)


async def test_a_referral_bonus_stays_when_the_first_purchase_is_refunded_in_full() -> None:
    """The contract grants it on a first purchase and says nothing of refunds."""
    ledger = FakeLedger()
    referred = new_event(
        events.CustomerEnrolled(
            customer_id="c2", partner_id="demo", enrolled_at=NOW, referred_by="c1"
        ),
        source="ingest/demo",
        subject="c2",
        time=NOW,
    )
    await apply_all([enrolled("c1"), referred, purchase("p1", "10.00", customer_id="c2")], ledger)
    assert ledger.balance("c1").available == 300
    await apply_all([refund("r1", "p1", "10.00", customer_id="c2")], ledger)
    assert ledger.balance("c1").available == 300
    assert (ledger.balance("c2").available, ledger.balance("c2").debt) == (100, 0)
