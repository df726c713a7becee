"""Coupons' rules: unguessable codes typed any way, a single use at the right partner's till,
and an expired coupon's points back only into lots that have not expired."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.points.domain.coupons import (
    ALPHABET,
    CODE_LENGTH,
    AnotherPartnersReward,
    Coupon,
    CouponExpired,
    CouponStatus,
    CouponUsed,
    expire_all,
    give_back,
    new_code,
    normalised,
    shown,
    status_at,
    take,
)
from services.points.domain.lots import Allocation
from services.points.domain.model import EntryKind, LedgerEntry

NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)


def coupon(**fields: object) -> Coupon:
    base: dict[str, object] = {
        "coupon_id": "k1",
        "code": "ABCD0123EFGH4567",
        "customer_id": "c1",
        "reward_id": "r1",
        "redemption_id": "red1",
        "points": 100,
        "issued_at": NOW - timedelta(days=1),
        "expires_at": NOW + timedelta(days=29),
    }
    return Coupon(**{**base, **fields})  # type: ignore[arg-type]


def test_a_code_holds_at_least_60_random_bits_of_crockford_base32() -> None:
    assert len(ALPHABET) == 32 and len(set(ALPHABET)) == 32
    assert CODE_LENGTH * 5 >= 60
    codes = {new_code() for _ in range(1000)}
    assert len(codes) == 1000
    assert all(len(c) == CODE_LENGTH and set(c) <= set(ALPHABET) for c in codes)
    # Every character of the alphabet shows up: the codes are not drawn from a subset.
    assert set("".join(codes)) == set(ALPHABET)


def test_a_code_is_shown_in_groups_of_four() -> None:
    assert shown("ABCD0123EFGH4567") == "ABCD-0123-EFGH-4567"


@given(st.randoms(use_true_random=False))
def test_a_shown_code_typed_in_any_case_with_or_without_dashes_is_the_code(
    rnd: random.Random,
) -> None:
    code = new_code(rnd.choice)
    printed = shown(code)
    assert normalised(printed) == code
    assert normalised(printed.lower()) == code
    assert normalised(code.lower()) == code
    assert normalised(printed.replace("-", " ")) == code


def test_look_alikes_are_read_as_the_digits_and_bad_codes_as_none() -> None:
    assert normalised("abcd-o123-efgh-4567") == "ABCD0123EFGH4567"
    assert normalised("1LI1-0000-0000-0000") == "1111000000000000"
    assert normalised("ABCD-0123-EFGH-456") is None  # too short
    assert normalised("ABCD-0123-EFGH-45678") is None  # too long
    assert normalised("ABCD-0123-EFGH-456U") is None  # U is not in the alphabet
    assert normalised("x" * 1000) is None


def test_a_coupon_is_taken_once_recording_where() -> None:
    taken = take(
        coupon(),
        honoured_by=None,
        partner_id="p1",
        store_id="s1",
        purchase_id="pu1",
        now=NOW,
    )
    assert taken.status is CouponStatus.REDEEMED
    assert (taken.redeemed_at, taken.partner_id, taken.store_id, taken.purchase_id) == (
        NOW,
        "p1",
        "s1",
        "pu1",
    )
    with pytest.raises(CouponUsed) as used:
        take(taken, honoured_by=None, partner_id="p1", store_id=None, purchase_id=None, now=NOW)
    assert used.value.coupon.redeemed_at == NOW


def test_another_partners_reward_is_refused_at_a_till_but_taken_by_an_administrator() -> None:
    with pytest.raises(AnotherPartnersReward):
        take(coupon(), honoured_by="p2", partner_id="p1", store_id=None, purchase_id=None, now=NOW)
    # Before its state is told: another partner's till learns nothing of it.
    used = coupon(status=CouponStatus.REDEEMED, redeemed_at=NOW)
    with pytest.raises(AnotherPartnersReward):
        take(used, honoured_by="p2", partner_id="p1", store_id=None, purchase_id=None, now=NOW)
    by_admin = take(
        coupon(), honoured_by="p2", partner_id=None, store_id=None, purchase_id=None, now=NOW
    )
    assert by_admin.status is CouponStatus.REDEEMED
    at_its_partner = take(
        coupon(), honoured_by="p2", partner_id="p2", store_id=None, purchase_id=None, now=NOW
    )
    assert at_its_partner.partner_id == "p2"


def test_a_coupon_past_its_expiry_is_expired_even_before_the_job_ran() -> None:
    late = coupon(expires_at=NOW)
    assert status_at(late, NOW) is CouponStatus.EXPIRED
    assert status_at(late, NOW - timedelta(seconds=1)) is CouponStatus.ISSUED
    with pytest.raises(CouponExpired):
        take(late, honoured_by=None, partner_id="p1", store_id=None, purchase_id=None, now=NOW)


def lot(lot_id: str, expires_in_days: int) -> LedgerEntry:
    return LedgerEntry(
        entry_id=lot_id,
        customer_id="c1",
        kind=EntryKind.EARN,
        points=500,
        reason="purchase",
        occurred_at=NOW - timedelta(days=300),
        available_at=NOW - timedelta(days=300),
        expires_at=NOW + timedelta(days=expires_in_days),
    )


def redemption(partner: str | None = "p1") -> LedgerEntry:
    return LedgerEntry(
        entry_id="red1",
        customer_id="c1",
        kind=EntryKind.REDEEM,
        points=-100,
        reason="Free coffee",
        occurred_at=NOW - timedelta(days=31),
        available_at=NOW - timedelta(days=31),
        partner_id=partner,
        store_id="s1",
        reward_id="r1",
    )


def test_an_expired_coupons_points_go_back_only_to_lots_still_unexpired() -> None:
    drawn = [Allocation("red1", "old", 60), Allocation("red1", "young", 40)]
    expiries = {"old": lot("old", -1).expires_at, "young": lot("young", 90).expires_at}
    back = give_back(coupon(expires_at=NOW), redemption(), drawn, expiries, NOW)
    assert back is not None
    entry, given = back
    assert given == [Allocation("red1:coupon-expired", "young", -40)]
    assert (entry.kind, entry.points, entry.reward_id) == (EntryKind.RELEASE, 40, "r1")
    # The release undoes the redemption where the redemption was recorded.
    assert (entry.partner_id, entry.store_id) == ("p1", "s1")


def test_nothing_goes_back_when_every_lot_expired_or_is_unknown() -> None:
    drawn = [Allocation("red1", "old", 100), Allocation("red1", "gone", 0)]
    assert give_back(coupon(), redemption(), drawn, {"old": NOW}, NOW) is None


def test_the_expiry_marks_each_late_coupon_and_refunds_or_forfeits() -> None:
    late, fresh = coupon(expires_at=NOW), coupon(coupon_id="k2", redemption_id="red2")
    drawn = [Allocation("red1", "young", 100)]
    expiries = {"young": NOW + timedelta(days=10)}
    redemptions = {"red1": redemption()}
    refunded = expire_all([late, fresh], redemptions, drawn, expiries, NOW, refund=True)
    assert [(c.coupon_id, c.status, c.points_returned) for c, _ in refunded] == [
        ("k1", CouponStatus.EXPIRED, 100)
    ]
    assert refunded[0][0].expired_at == late.expires_at
    forfeited = expire_all([late], redemptions, drawn, expiries, NOW, refund=False)
    assert [(c.points_returned, back) for c, back in forfeited] == [(0, None)]


@given(
    draws=st.lists(
        st.tuples(st.integers(1, 200), st.integers(-30, 30) | st.none()), min_size=1, max_size=6
    )
)
def test_a_refund_never_gives_back_more_than_was_drawn_nor_into_an_expired_lot(
    draws: list[tuple[int, int | None]],
) -> None:
    drawn = [Allocation("red1", f"lot{n}", points) for n, (points, _) in enumerate(draws)]
    expiries = {
        f"lot{n}": None if days is None else NOW + timedelta(days=days)
        for n, (_, days) in enumerate(draws)
    }
    back = give_back(coupon(), redemption(), drawn, expiries, NOW)
    unexpired = [
        a.points
        for a in drawn
        if expiries[a.lot_id] is None or expiries[a.lot_id] > NOW  # type: ignore[operator]
    ]
    if back is None:
        assert unexpired == []
        return
    entry, given = back
    assert entry.points == sum(unexpired) == -sum(a.points for a in given)
    for allocation in given:
        at = expiries[allocation.lot_id]
        assert at is None or at > NOW
