"""The chaos run's model of what a customer's accepted calls commit points to: the points a
refund of a purchase paid with points gives back."""

from hypothesis import given
from hypothesis import strategies as st

from chaos.traffic import CustomerModel, TenderPurchase


def model_with(total: int, points: int, refunds: list[int]) -> CustomerModel:
    model = CustomerModel("c-1", "c-1@example.com", consent_email=True)
    model.purchases["p-1"] = total
    model.tender["p-1"] = TenderPurchase(total, points)
    model.redemptions.append(points)
    for n, amount in enumerate(refunds):
        model.refunds[f"r-{n}"] = ("p-1", amount)
    return model


def test_each_refund_gives_back_its_share_rounded_down_and_the_shares_add_up() -> None:
    model = model_with(total=30, points=20, refunds=[10, 10, 9])
    # floor(20 * 10/30) = 6, floor(20 * 20/30) = 13, floor(20 * 29/30) = 19
    assert model.tender_returns() == [6, 7, 6]


@given(
    total=st.integers(2, 450),
    points=st.integers(1, 40),
    cuts=st.lists(st.integers(1, 449), max_size=6),
)
def test_refunds_never_give_back_more_than_was_spent(
    total: int, points: int, cuts: list[int]
) -> None:
    refunds, left = [], total
    for cut in cuts:
        amount = min(cut, left)
        if amount <= 0:
            break
        refunds.append(amount)
        left -= amount
    model = model_with(total, points, refunds)
    returned = model.tender_returns()
    assert all(r >= 0 for r in returned)
    assert sum(returned) == points * sum(refunds) // total <= points
    # A refund of everything gives back every point spent.
    assert (sum(refunds) == total) <= (sum(returned) == points)
