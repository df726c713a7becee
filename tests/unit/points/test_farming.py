"""Points farmed for nothing (issue 19): the referral bonus only for a purchase of at least
the minimum that was kept past the return window, and the velocity guard on by default."""

import asyncio
from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.points.adapters.program_file import DEFAULT_PROGRAM_FILE, load_program
from services.points.domain.lots import spend
from services.points.domain.model import EntryKind, Program
from shared.messaging import events
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.points import FakeLedger
from tests.support.points import NOW, apply_all, enrolled

WINDOW = Program(pending_days=14)
BOUGHT = NOW - timedelta(days=20)  # the return window ended 6 days before NOW


def bought(purchase_id: str, total: str, customer: str = "bob") -> CloudEvent:
    return factories.purchase(customer, total, at=BOUGHT, purchase_id=purchase_id)


def refunded(
    refund_id: str, purchase_id: str, amount: str, days_after: float, customer: str = "bob"
) -> CloudEvent:
    return factories.refund(
        customer,
        purchase_id,
        amount,
        refund_id=refund_id,
        at=BOUGHT + timedelta(days=days_after),
    )


def referral_events(sink: CollectingSink) -> list[tuple[str, str, int]]:
    """(type, customer, points) of the referrer's bonus granted or taken back."""
    return [
        (event.type, event.subject, event.data["points"])
        for _, _, event in sink.events
        if event.subject == "alice"
        and event.type in (events.POINTS_EARNED, events.POINTS_REVERSED)
        and event.data.get("reason") != "welcome"
    ]


async def referred_ledger(program: Program = WINDOW) -> FakeLedger:
    ledger = FakeLedger()
    await apply_all([enrolled("alice"), enrolled("bob", "alice")], ledger, program=program)
    return ledger


def alice(ledger: FakeLedger) -> tuple[int, int, int]:
    balance = ledger.balance("alice")
    return balance.available, balance.pending, balance.debt


async def test_a_first_purchase_below_the_minimum_pays_no_referral() -> None:
    ledger = await referred_ledger()
    sink = await apply_all([bought("p1", "0.01")], ledger, program=WINDOW)
    assert referral_events(sink) == []
    assert "referral:bob" not in ledger.ledger


async def test_the_first_purchase_of_at_least_the_minimum_pays_it_once() -> None:
    ledger = await referred_ledger()
    await apply_all([bought("p1", "9.99")], ledger, program=WINDOW)
    sink = await apply_all([bought("p2", "10.00"), bought("p3", "50.00")], ledger, program=WINDOW)
    assert referral_events(sink) == [(events.POINTS_EARNED, "alice", 200)]
    bonus = ledger.ledger["referral:bob"]
    assert (bonus.purchase_id, bonus.available_at) == ("p2", BOUGHT + timedelta(days=14))


async def test_the_bonus_is_pending_for_the_return_window() -> None:
    ledger = FakeLedger()
    recent = factories.purchase("bob", "20.00", at=NOW - timedelta(days=1), purchase_id="p1")
    await apply_all([enrolled("alice"), enrolled("bob", "alice"), recent], ledger, program=WINDOW)
    assert alice(ledger) == (100, 200, 0)


async def test_a_full_refund_within_the_window_takes_the_bonus_back() -> None:
    ledger = await referred_ledger()
    await apply_all([bought("p1", "20.00")], ledger, program=WINDOW)
    assert alice(ledger) == (300, 0, 0)  # the window is over at NOW: available
    sink = await apply_all([refunded("r1", "p1", "20.00", 3)], ledger, program=WINDOW)
    assert referral_events(sink) == [(events.POINTS_REVERSED, "alice", 200)]
    assert alice(ledger) == (100, 0, 0)
    # A replay takes nothing more, and a later purchase pays nothing: the referral is spent.
    again = await apply_all(
        [refunded("r1", "p1", "20.00", 3), bought("p2", "30.00")], ledger, program=WINDOW
    )
    assert referral_events(again) == []
    assert alice(ledger) == (100, 0, 0)


async def test_a_refund_after_the_window_leaves_the_bonus() -> None:
    ledger = await referred_ledger()
    sink = await apply_all(
        [bought("p1", "20.00"), refunded("r1", "p1", "20.00", 14)], ledger, program=WINDOW
    )
    assert referral_events(sink) == [(events.POINTS_EARNED, "alice", 200)]
    assert alice(ledger) == (300, 0, 0)


async def test_partial_refunds_take_it_back_once_less_than_the_minimum_is_kept() -> None:
    ledger = await referred_ledger()
    await apply_all([bought("p1", "25.00")], ledger, program=WINDOW)
    kept_15 = await apply_all([refunded("r1", "p1", "10.00", 1)], ledger, program=WINDOW)
    assert referral_events(kept_15) == []
    kept_5 = await apply_all([refunded("r2", "p1", "10.00", 2)], ledger, program=WINDOW)
    assert referral_events(kept_5) == [(events.POINTS_REVERSED, "alice", 200)]
    assert alice(ledger) == (100, 0, 0)


async def test_a_refund_that_came_before_its_purchase_takes_the_bonus_back_with_it() -> None:
    ledger = await referred_ledger()
    await apply_all([refunded("r1", "p1", "20.00", 1)], ledger, program=WINDOW)
    sink = await apply_all([bought("p1", "20.00")], ledger, program=WINDOW)
    assert [t for t, _, _ in referral_events(sink)] == [
        events.POINTS_EARNED,
        events.POINTS_REVERSED,
    ]
    assert alice(ledger) == (100, 0, 0)


async def test_a_refund_of_another_purchase_leaves_the_bonus() -> None:
    ledger = await referred_ledger()
    await apply_all([bought("p1", "20.00"), bought("p2", "20.00")], ledger, program=WINDOW)
    sink = await apply_all([refunded("r1", "p2", "20.00", 1)], ledger, program=WINDOW)
    assert referral_events(sink) == []
    assert alice(ledger) == (300, 0, 0)


async def test_a_bonus_the_referrer_spent_meanwhile_is_debt_under_unlimited() -> None:
    program = Program(pending_days=14, refund_policy="unlimited")
    ledger = await referred_ledger(program)
    await apply_all([bought("p1", "20.00")], ledger, program=program)
    spent, drawn = spend(
        ledger.entries("alice"),
        [a for _, a in ledger.allocations],
        kind=EntryKind.REDEEM,
        entry_id="spent",
        customer_id="alice",
        points=300,
        reason="reward",
        now=NOW,
    )
    ledger.ledger[spent.entry_id] = spent
    ledger.allocations.extend(("alice", a) for a in drawn)
    await apply_all([refunded("r1", "p1", "20.00", 1)], ledger, program=program)
    reversal = ledger.ledger["referral-reversed:bob"]
    assert (reversal.kind, reversal.points) == (EntryKind.REVERSE, -200)
    assert alice(ledger) == (0, 0, 200)


@settings(max_examples=60, deadline=None)
@given(
    total_cents=st.integers(min_value=1, max_value=100_000),
    refunds=st.lists(
        st.tuples(st.integers(min_value=1, max_value=100), st.integers(min_value=0, max_value=30)),
        max_size=4,
    ),
)
def test_the_referrer_keeps_the_bonus_exactly_when_the_kept_purchase_qualifies(
    total_cents: int, refunds: list[tuple[int, int]]
) -> None:
    """Whatever the refunds and their order: the bonus is granted once when the purchase
    reaches the minimum, and taken back once exactly when the refunds within the window
    leave less than the minimum kept."""
    total = Decimal(total_cents) / 100
    amounts: list[tuple[Decimal, int]] = []
    left = total
    for share, day in refunds:
        amount = min(left, (total * share / 100).quantize(Decimal("0.01")))
        if amount > 0:
            amounts.append((amount, day))
            left -= amount

    async def scenario() -> None:
        ledger = await referred_ledger()
        batches = [
            [bought("p1", str(total))],
            *([refunded(f"r{n}", "p1", str(a), d)] for n, (a, d) in enumerate(amounts)),
        ]
        for batch in [*batches, *batches]:  # everything delivered twice
            await apply_all(batch, ledger, program=WINDOW)
        within = sum((a for a, d in amounts if d < 14), start=Decimal(0))
        granted = total >= WINDOW.referral_min_purchase
        kept = granted and total - within >= WINDOW.referral_min_purchase
        bonus = ledger.ledger.get("referral:bob")
        taken = ledger.ledger.get("referral-reversed:bob")
        assert (bonus is not None) == granted
        assert (taken is not None) == (granted and not kept)
        assert ledger.balance("alice").available == 100 + (200 if kept else 0)

    asyncio.run(scenario())


async def test_the_velocity_guard_is_on_by_default() -> None:
    shipped = load_program(DEFAULT_PROGRAM_FILE)
    assert shipped.max_points_per_day == Program().max_points_per_day == 5000
    assert shipped.referral_min_purchase == Program().referral_min_purchase == Decimal("10.00")
    ledger = FakeLedger()
    big = factories.purchase("c1", "6000.00", at=NOW, purchase_id="p1")
    await apply_all([big], ledger)  # the default program
    assert ledger.balance("c1").available == 5000
    assert ledger.ledger["held:purchase:demo:p1"].points == 1000
