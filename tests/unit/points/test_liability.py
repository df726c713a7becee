"""The liability's arithmetic: what is in the lots, the debt, and what the partner owes."""

from services.points.domain.liability import TOTAL, Liability, total_of


def test_outstanding_is_issued_less_what_left_the_lots() -> None:
    assert Liability("a", issued=500, spent=120, expired=30, reversed=50).outstanding == 300


def test_the_total_adds_up_every_partner() -> None:
    total = total_of([Liability("a", 500, 120, 30, 50), Liability("b", 100, 10, 0, 0)])
    assert total == Liability(TOTAL, 600, 130, 30, 50)
    assert total.outstanding == 390


def test_the_total_of_no_partner_is_zero() -> None:
    assert total_of([]).outstanding == 0


def test_debt_lowers_what_the_partner_owes_and_shows_on_its_own() -> None:
    """A refund of spent points took 40 beyond the lots: the customer owes them back (their
    next earnings repay them), so the partner owes 40 fewer than its lots hold."""
    liability = Liability("a", issued=500, spent=120, expired=30, reversed=50, debt=40)
    assert (liability.in_lots, liability.debt, liability.outstanding) == (300, 40, 260)
    total = total_of([liability, Liability("b", 100, 10, 0, 0, debt=5)])
    assert (total.debt, total.outstanding) == (45, 345)
