"""The liability's arithmetic: outstanding is what was issued and is still in the lots."""

from services.points.domain.liability import TOTAL, Liability, total_of


def test_outstanding_is_issued_less_what_left_the_lots() -> None:
    assert Liability("a", issued=500, spent=120, expired=30, reversed=50).outstanding == 300


def test_the_total_adds_up_every_partner() -> None:
    total = total_of([Liability("a", 500, 120, 30, 50), Liability("b", 100, 10, 0, 0)])
    assert total == Liability(TOTAL, 600, 130, 30, 50)
    assert total.outstanding == 390


def test_the_total_of_no_partner_is_zero() -> None:
    assert total_of([]).outstanding == 0
