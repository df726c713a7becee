"""Lots, allocations and the balance derived from them, on random sequences of movements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from services.points.domain.lots import (
    Allocation,
    NotEnoughPoints,
    balance_of,
    draw,
    expire,
    lots_to_warn,
    release,
    remaining_of_lots,
    spend,
)
from services.points.domain.model import EntryKind, LedgerEntry, Program
from services.points.jobs import points_jobs
from shared.clock import FixedClock
from tests.support.fakes.points import Ledger

NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)


def lot(
    entry_id: str,
    points: int,
    *,
    earned: datetime = NOW,
    pending_days: int = 0,
    validity_days: int = 365,
) -> LedgerEntry:
    return LedgerEntry(
        entry_id=entry_id,
        customer_id="c1",
        kind=EntryKind.EARN,
        points=points,
        reason="purchase",
        occurred_at=earned,
        available_at=earned + timedelta(days=pending_days),
        expires_at=earned + timedelta(days=validity_days),
    )


def test_spending_draws_the_soonest_expiring_lots_first() -> None:
    entries = [lot("late", 50, validity_days=300), lot("soon", 30, validity_days=10)]
    drawn = draw(entries, [], entry_id="r1", points=40, now=NOW)
    assert drawn == [Allocation("r1", "soon", 30), Allocation("r1", "late", 10)]


def test_pending_and_expired_lots_cannot_be_spent() -> None:
    entries = [
        lot("pending", 50, pending_days=14),
        lot("old", 30, earned=NOW - timedelta(days=400)),
    ]
    with pytest.raises(NotEnoughPoints) as refused:
        draw(entries, [], entry_id="r1", points=1, now=NOW)
    assert refused.value.available == 0
    balance = balance_of("c1", entries, NOW)
    assert (balance.available, balance.pending) == (0, 50)


def test_a_spend_beyond_what_is_available_draws_nothing() -> None:
    entries = [lot("a", 30)]
    with pytest.raises(NotEnoughPoints):
        spend(
            entries,
            [],
            kind=EntryKind.REDEEM,
            entry_id="r1",
            customer_id="c1",
            points=31,
            reason="coffee",
            now=NOW,
        )


def test_a_released_hold_gives_its_points_back_to_the_same_lots() -> None:
    ledger = Ledger()
    ledger.record(lot("a", 30, validity_days=10))
    ledger.record(lot("b", 30, validity_days=20))
    hold, drawn = spend(
        ledger.entries,
        ledger.allocations,
        kind=EntryKind.HOLD,
        entry_id="h1",
        customer_id="c1",
        points=40,
        reason="till",
        now=NOW,
    )
    ledger.record(hold, drawn)
    assert balance_of("c1", ledger.entries, NOW, ledger.allocations).available == 20
    back, given = release(
        hold.entry_id, "c1", ledger.allocations, entry_id="h1:void", reason="voided", now=NOW
    )
    ledger.record(back, given)
    assert remaining_of_lots(ledger.entries, ledger.allocations) == {"a": 30, "b": 30}
    assert balance_of("c1", ledger.entries, NOW, ledger.allocations).available == 60


def test_an_expiry_takes_what_is_left_of_a_lot_once() -> None:
    ledger = Ledger()
    ledger.record(lot("a", 100, validity_days=10))
    redemption, drawn = spend(
        ledger.entries,
        ledger.allocations,
        kind=EntryKind.REDEEM,
        entry_id="r1",
        customer_id="c1",
        points=40,
        reason="x",
        now=NOW,
    )
    ledger.record(redemption, drawn)
    later = NOW + timedelta(days=10)
    ((expiry, taken),) = expire(ledger.entries, ledger.allocations, later)
    assert expiry.points == -60 and taken == [Allocation(expiry.entry_id, "a", 60)]
    ledger.record(expiry, taken)
    assert expire(ledger.entries, ledger.allocations, later) == []
    assert expire(ledger.entries, ledger.allocations, later + timedelta(days=1)) == []


def test_balance_shows_the_soonest_expiries_of_what_is_left() -> None:
    entries = [lot("a", 10, validity_days=5), lot("b", 20, validity_days=9)]
    allocations = [Allocation("r1", "a", 4)]
    balance = balance_of("c1", entries, NOW, allocations)
    assert [(e.points, e.expires_at) for e in balance.next_expiries] == [
        (6, NOW + timedelta(days=5)),
        (20, NOW + timedelta(days=9)),
    ]
    assert balance.lifetime_earned == 30


# --- Properties on random sequences ----------------------------------------------------------

earn = st.tuples(
    st.just("earn"),
    st.integers(1, 500),
    st.integers(0, 3),  # pending days
    st.integers(1, 8),  # validity days
)
take = st.tuples(st.sampled_from(["redeem", "hold"]), st.integers(1, 600), st.just(0), st.just(0))
other = st.tuples(
    st.sampled_from(["expire", "release", "redeliver", "tick"]),
    st.integers(0, 3),
    st.just(0),
    st.just(0),
)
operations = st.lists(st.one_of(earn, take, other), max_size=40)


def run(ops: list[tuple[str, int, int, int]]) -> tuple[Ledger, datetime]:
    ledger = Ledger()
    now = NOW
    for n, (op, amount, pending_days, validity_days) in enumerate(ops):
        if op == "earn":
            ledger.record(
                lot(
                    f"lot{n}",
                    amount,
                    earned=now,
                    pending_days=pending_days,
                    validity_days=validity_days,
                )
            )
        elif op in ("redeem", "hold"):
            kind = EntryKind.REDEEM if op == "redeem" else EntryKind.HOLD
            before = balance_of("c1", ledger.entries, now, ledger.allocations).available
            try:
                entry, drawn = spend(
                    ledger.entries,
                    ledger.allocations,
                    kind=kind,
                    entry_id=f"{op}{n}",
                    customer_id="c1",
                    points=amount,
                    reason="reward",
                    now=now,
                )
            except NotEnoughPoints:
                assert amount > before
                continue
            assert amount <= before
            assert sum(a.points for a in drawn) == amount
            ledger.record(entry, drawn)
            if kind is EntryKind.HOLD:
                ledger.held.append(entry)
        elif op == "release" and ledger.held:
            hold = ledger.held.pop(amount % len(ledger.held))
            ledger.record(
                *release(
                    hold.entry_id,
                    "c1",
                    ledger.allocations,
                    entry_id=f"{hold.entry_id}:release",
                    reason="voided",
                    now=now,
                )
            )
        elif op == "expire":
            for entry, taken in expire(ledger.entries, ledger.allocations, now):
                ledger.record(entry, taken)
        elif op == "redeliver" and ledger.entries:
            ledger.record(ledger.entries[amount % len(ledger.entries)])
        elif op == "tick":
            now += timedelta(days=amount)
    return ledger, now


@settings(max_examples=300, deadline=None)
@given(operations)
def test_no_lot_is_ever_drawn_below_zero_nor_any_movement_recorded_twice(
    ops: list[tuple[str, int, int, int]],
) -> None:
    ledger, _ = run(ops)
    assert all(left >= 0 for left in remaining_of_lots(ledger.entries, ledger.allocations).values())
    ids = [e.entry_id for e in ledger.entries]
    assert len(ids) == len(set(ids))
    pairs = [(a.entry_id, a.lot_id) for a in ledger.allocations]
    assert len(pairs) == len(set(pairs))


@settings(max_examples=300, deadline=None)
@given(operations)
def test_once_expired_the_balance_is_the_sum_of_the_movements(
    ops: list[tuple[str, int, int, int]],
) -> None:
    ledger, now = run(ops)
    for entry, taken in expire(ledger.entries, ledger.allocations, now):
        ledger.record(entry, taken)
    balance = balance_of("c1", ledger.entries, now, ledger.allocations)
    assert balance.available + balance.pending - balance.debt == sum(
        e.points for e in ledger.entries
    )
    assert balance.debt == 0
    assert balance.lifetime_earned == sum(
        e.points for e in ledger.entries if e.points > 0 and e.kind is EntryKind.EARN
    )


@settings(max_examples=300, deadline=None)
@given(operations, st.integers(1, 600))
def test_a_spend_draws_every_earlier_expiring_lot_dry_before_touching_a_later_one(
    ops: list[tuple[str, int, int, int]], points: int
) -> None:
    ledger, now = run(ops)
    try:
        drawn = draw(ledger.entries, ledger.allocations, entry_id="probe", points=points, now=now)
    except NotEnoughPoints:
        return
    expiry = {e.entry_id: e.expires_at for e in ledger.entries}
    left = remaining_of_lots(ledger.entries, ledger.allocations)
    latest_drawn = max(expiry[a.lot_id] or now for a in drawn)
    for allocation in drawn[:-1]:  # every lot but the last one drawn is drawn dry
        assert allocation.points == left[allocation.lot_id]
    untouched = {lot for lot in left if lot not in {a.lot_id for a in drawn}}
    spendable_untouched = [
        lot
        for lot in untouched
        if left[lot] > 0
        and (e := next(x for x in ledger.entries if x.entry_id == lot)).available_at <= now
        and (e.expires_at is None or e.expires_at > now)
    ]
    assert all((expiry[lot] or now) >= latest_drawn for lot in spendable_untouched)


def test_a_lot_is_warned_of_once_within_the_window_with_what_is_left() -> None:
    entries = [
        lot("soon", 50, validity_days=20),
        lot("later", 30, validity_days=100),
        lot("spent", 10, validity_days=5),
    ]
    allocations = [Allocation("r1", "soon", 10), Allocation("r1", "spent", 10)]
    ahead = timedelta(days=30)
    warn = lots_to_warn(entries, allocations, set(), NOW, ahead)
    assert [(lot.entry_id, left) for lot, left in warn] == [("soon", 40)]
    assert lots_to_warn(entries, allocations, {"soon"}, NOW, ahead) == []
    assert lots_to_warn(entries, allocations, set(), NOW + timedelta(days=20), ahead) == []


async def test_the_jobs_run_in_the_contracts_names_and_order() -> None:
    jobs = points_jobs(Program(), FixedClock(NOW))
    assert [job.name for job in jobs] == [
        "activate-pending",
        "lapse-holds",
        "expire-coupons",
        "warn-expiring",
        "expire-points",
    ]
    # Availability is derived from `available_at`: activating pending points writes nothing.
    summary = await jobs[0].run(cast(AsyncEngine, None), NOW)
    assert summary == {"as_of": NOW.isoformat(), "writes": 0}
