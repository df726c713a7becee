"""Staff adjustments: a positive one is a lot that repays debt first, a negative one draws on
the available lots and is refused whole when they hold too few points."""

from datetime import timedelta

import pytest

from services.points.domain.adjustments import adjust
from services.points.domain.lots import Allocation, NotEnoughPoints, balance_of
from services.points.domain.model import EntryKind, LedgerEntry, Program
from tests.support.points import NOW

PROGRAM = Program()


def lot(entry_id: str, points: int, days_left: int = 300) -> LedgerEntry:
    return LedgerEntry(
        entry_id=entry_id,
        customer_id="c1",
        kind=EntryKind.EARN,
        points=points,
        reason="purchase",
        occurred_at=NOW - timedelta(days=1),
        available_at=NOW - timedelta(days=1),
        expires_at=NOW + timedelta(days=days_left),
    )


def debt(entry_id: str, points: int) -> LedgerEntry:
    return LedgerEntry(
        entry_id=entry_id,
        customer_id="c1",
        kind=EntryKind.REVERSE,
        points=-points,
        reason="refund",
        occurred_at=NOW,
        available_at=NOW,
    )


def test_a_positive_adjustment_is_a_lot_that_expires() -> None:
    entry, drawn = adjust(
        PROGRAM, [], [], entry_id="a1", customer_id="c1", points=50, reason="sorry", now=NOW
    )
    assert drawn == []
    assert entry.expires_at == PROGRAM.expiry_for(NOW)
    assert balance_of("c1", [entry], NOW).available == 50


def test_a_positive_adjustment_repays_debt_first() -> None:
    entries = [debt("refund:r1", 30)]
    entry, drawn = adjust(
        PROGRAM, entries, [], entry_id="a1", customer_id="c1", points=50, reason="sorry", now=NOW
    )
    assert drawn == [Allocation("refund:r1", "a1", 30)]
    balance = balance_of("c1", [*entries, entry], NOW, drawn)
    assert (balance.available, balance.debt) == (20, 0)


def test_a_negative_adjustment_draws_the_soonest_expiring_lots() -> None:
    entries = [lot("late", 100, 300), lot("soon", 20, 10)]
    entry, drawn = adjust(
        PROGRAM, entries, [], entry_id="a1", customer_id="c1", points=-50, reason="fix", now=NOW
    )
    assert entry.points == -50
    assert drawn == [Allocation("a1", "soon", 20), Allocation("a1", "late", 30)]


def test_a_negative_adjustment_beyond_the_available_points_is_refused() -> None:
    with pytest.raises(NotEnoughPoints):
        adjust(
            PROGRAM,
            [lot("l1", 10)],
            [],
            entry_id="a1",
            customer_id="c1",
            points=-11,
            reason="fix",
            now=NOW,
        )
