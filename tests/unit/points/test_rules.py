from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.points.adapters.program_file import load_program
from services.points.domain.earning import PurchaseFacts, purchase_points
from services.points.domain.lots import balance_of
from services.points.domain.model import (
    EntryKind,
    LedgerEntry,
    Program,
    add_months,
    purchase_earning,
    welcome_bonus,
)

NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
PROGRAM = Program()
amounts = st.decimals(min_value=0, max_value=Decimal("99999.99"), places=2)


def base_points(program: Program, total: Decimal, occurred_at: datetime = NOW) -> int:
    facts = PurchaseFacts(partner_id="demo", store_id=None, occurred_at=occurred_at, total=total)
    return purchase_points(program, facts, tier=None, campaigns=()).points


def purchase_entry(
    program: Program,
    *,
    entry_id: str,
    customer_id: str,
    purchase_id: str,
    total: Decimal,
    occurred_at: datetime,
) -> LedgerEntry:
    facts = PurchaseFacts(partner_id="demo", store_id=None, occurred_at=occurred_at, total=total)
    earning = purchase_points(program, facts, tier=None, campaigns=())
    return purchase_earning(
        program,
        entry_id=entry_id,
        customer_id=customer_id,
        purchase_id=purchase_id,
        occurred_at=occurred_at,
        points=earning.points,
        rule_ids=earning.rule_ids,
        expires_at=earning.expires_at,
    )


def test_base_points_round_down_once() -> None:
    assert base_points(PROGRAM, Decimal("49.99")) == 49
    assert base_points(PROGRAM, Decimal("300.00")) == 300
    assert base_points(PROGRAM, Decimal("0.99")) == 0


@given(amounts)
def test_base_points_never_exceed_the_amount_and_lose_less_than_one(total: Decimal) -> None:
    points = base_points(PROGRAM, total)
    assert points <= total < points + 1


def test_negative_total_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        base_points(PROGRAM, Decimal("-1"))


def test_purchase_earning_is_a_lot_expiring_twelve_months_later() -> None:
    entry = purchase_entry(
        PROGRAM,
        entry_id="e1",
        customer_id="c1",
        purchase_id="p1",
        total=Decimal("250.00"),
        occurred_at=NOW,
    )
    assert entry.points == 250
    assert entry.rule_ids == ("base",)
    assert entry.kind is EntryKind.EARN
    assert entry.available_at == NOW
    assert entry.expires_at == datetime(2027, 11, 22, 10, 15, tzinfo=UTC)


def test_pending_period_delays_availability() -> None:
    program = Program(pending_days=14)
    entry = purchase_entry(
        program,
        entry_id="e1",
        customer_id="c1",
        purchase_id="p1",
        total=Decimal("10"),
        occurred_at=NOW,
    )
    balance = balance_of("c1", [entry], NOW + timedelta(days=13))
    assert (balance.available, balance.pending) == (0, 10)
    balance = balance_of("c1", [entry], NOW + timedelta(days=14))
    assert (balance.available, balance.pending) == (10, 0)


def test_balance_of_welcome_and_two_purchases() -> None:
    entries = [
        welcome_bonus(PROGRAM, entry_id="w", customer_id="c1", enrolled_at=NOW),
        purchase_entry(
            PROGRAM,
            entry_id="p1",
            customer_id="c1",
            purchase_id="p1",
            total=Decimal("300.00"),
            occurred_at=NOW,
        ),
        purchase_entry(
            PROGRAM,
            entry_id="p2",
            customer_id="c1",
            purchase_id="p2",
            total=Decimal("250.00"),
            occurred_at=NOW + timedelta(days=40),
        ),
    ]
    balance = balance_of("c1", entries, NOW + timedelta(days=41))
    assert balance.available == 650
    assert balance.lifetime_earned == 650
    assert balance.debt == 0
    assert [e.points for e in balance.next_expiries] == [400, 250]


def test_expired_lots_leave_the_available_balance() -> None:
    entry = welcome_bonus(PROGRAM, entry_id="w", customer_id="c1", enrolled_at=NOW)
    assert balance_of("c1", [entry], add_months(NOW, 12)).available == 0
    assert balance_of("c1", [entry], add_months(NOW, 12) - timedelta(seconds=1)).available == 100


def _entry(points: int, offset_days: int) -> LedgerEntry:
    at = NOW + timedelta(days=offset_days)
    return LedgerEntry(
        entry_id=f"e{offset_days}{points}",
        customer_id="c1",
        kind=EntryKind.EARN,
        points=points,
        reason="purchase",
        occurred_at=at,
        available_at=at,
        expires_at=add_months(at, 12),
    )


@given(st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 300)), max_size=30))
def test_balance_is_the_sum_of_the_ledger(movements: list[tuple[int, int]]) -> None:
    entries = [_entry(points, day) for points, day in movements]
    balance = balance_of("c1", entries, NOW + timedelta(days=301))
    assert balance.available + balance.pending == sum(points for points, _ in movements)
    assert balance.lifetime_earned == sum(points for points, _ in movements)


@given(
    st.datetimes(
        # hypothesis takes naive bounds and applies `timezones` itself
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    st.integers(0, 48),
)
def test_add_months_keeps_time_and_never_overflows_the_month(start: datetime, months: int) -> None:
    later = add_months(start, months)
    assert (later.year * 12 + later.month) - (start.year * 12 + start.month) == months
    assert later.time() == start.time()
    assert later.day <= start.day


def test_program_file_shipped_is_the_default_program() -> None:
    assert load_program() == Program()
