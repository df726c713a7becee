"""Engagement's grants of a catalogue's reward (issue 20): a gift coupon, issued once per grant
id with no points spent, counted off the reward's stock, announced by `coupon.issued` naming the
grant; refused for a reward unknown, closed or out of stock; voided by the grant's revocation
while unused (a used one stays used: nothing taken back, no debt), and never refunding points
on expiry."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.points.domain.coupons import (
    ALPHABET,
    CODE_LENGTH,
    Coupon,
    CouponStatus,
    CouponVoided,
    expire_all,
    revoke_gift,
    status_at,
    take,
)
from services.points.domain.engagement import CouponGrantRefused, Gift, gift_coupon, gift_coupon_id
from services.points.domain.lots import Allocation
from services.points.domain.rewards import Reward, RewardKind
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.points import FakeLedger
from tests.support.points import NOW, apply_all, enrolled, replace_id

VALIDITY = 14


def coffee(**fields: object) -> Reward:
    values: dict[str, object] = {
        "reward_id": "rw-coffee",
        "name": "Free coffee",
        "kind": RewardKind.ITEM,
        "points_cost": 300,
        "created_at": NOW - timedelta(days=30),
        "partner_id": "caffe-nord",
        "coupon_validity_days": VALIDITY,
    }
    values.update(fields)
    return Reward(**values)  # type: ignore[arg-type]


def catalogue(**fields: object) -> FakeLedger:
    ledger = FakeLedger()
    ledger.rewards["rw-coffee"] = coffee(**fields)
    return ledger


def gift(grant_id: str = "g1", customer_id: str = "c1", at: datetime = NOW) -> CloudEvent:
    return factories.engagement_rewarded(
        customer_id, grant_id=grant_id, points=None, reward_id="rw-coffee", at=at
    )


def revoked(grant_id: str = "g1", customer_id: str = "c1") -> CloudEvent:
    return factories.engagement_reward_revoked(customer_id, grant_id, at=NOW)


def issued(sink: CollectingSink) -> list[events.CouponIssued]:
    return [
        event.data_as(events.CouponIssued)
        for _, _, event in sink.events
        if event.type == events.COUPON_ISSUED
    ]


def a_gift(grant_id: str = "g1") -> Gift:
    return Gift(grant_id, "c1", "stamp_card", "card-1", "Coffee card", "rw-coffee", NOW)


# -- the coupon a gift gives ---------------------------------------------------------------


def test_a_gift_is_a_coupon_of_no_points_named_by_its_grant() -> None:
    coupon = gift_coupon(a_gift(), coffee(), issued_before=0, code="ABCD")
    assert (coupon.points, coupon.grant_id, coupon.redemption_id) == (0, "g1", "g1")
    assert (coupon.customer_id, coupon.reward_id, coupon.code) == ("c1", "rw-coffee", "ABCD")
    assert (coupon.issued_at, coupon.expires_at) == (NOW, NOW + timedelta(days=VALIDITY))
    assert coupon.status is CouponStatus.ISSUED and coupon.is_gift
    assert coupon.coupon_id == gift_coupon_id("g1") != gift_coupon_id("g2")


@pytest.mark.parametrize(
    ("reward", "why"),
    [
        (None, "no reward"),
        (coffee(retired_at=NOW - timedelta(seconds=1)), "retired"),
        (coffee(starts_at=NOW + timedelta(days=1)), "window"),
        (coffee(ends_at=NOW), "window"),
        (coffee(stock=5, redeemed=5), "out of stock"),
    ],
)
def test_a_gift_of_a_reward_unknown_closed_or_out_of_stock_is_refused(
    reward: Reward | None, why: str
) -> None:
    with pytest.raises(CouponGrantRefused, match=why):
        gift_coupon(a_gift(), reward, issued_before=reward.redeemed if reward else 0, code="X")


def test_every_kind_of_reward_is_given_as_its_coupon() -> None:
    for kind in RewardKind:
        assert gift_coupon(a_gift(), coffee(kind=kind), issued_before=0, code="X").points == 0


# -- issued once, announced once -----------------------------------------------------------


async def test_a_gift_issues_one_coupon_and_announces_it_as_a_gift_spending_nothing() -> None:
    ledger = catalogue()
    sink = await apply_all([enrolled(), gift()], ledger)
    coupon = ledger.coupon_of("g1")
    assert len(coupon.code) == CODE_LENGTH and set(coupon.code) <= set(ALPHABET)
    assert ledger.balance("c1").available == 100  # the welcome bonus only: nothing spent
    assert [e.kind.value for e in ledger.entries("c1")] == ["bonus"]  # no ledger entry
    assert ledger.rewards["rw-coffee"].redeemed == 1
    [announced] = issued(sink)
    assert announced == events.CouponIssued(
        coupon_id=coupon.coupon_id,
        customer_id="c1",
        redemption_id="g1",
        reward_id="rw-coffee",
        reward="Free coffee",
        points=0,
        partner_id="caffe-nord",
        expires_at=NOW + timedelta(days=VALIDITY),
        grant_id="g1",
    )
    [(topic, key, _)] = [t for t in sink.events if t[2].type == events.COUPON_ISSUED]
    assert (topic, key) == (topics.POINTS, "c1")


async def test_the_same_gift_delivered_again_issues_no_second_coupon() -> None:
    ledger = catalogue()
    first = await apply_all([gift(), replace_id(gift(), "copy-in-batch")], ledger)
    again = await apply_all([replace_id(gift(), "copy-later")], ledger)
    assert len(ledger.coupons) == 1 and len(issued(first)) == 1
    assert again.events == []
    assert ledger.rewards["rw-coffee"].redeemed == 1


async def test_gifts_count_off_the_stock_and_the_one_beyond_it_is_refused() -> None:
    ledger = catalogue(stock=3, redeemed=1)
    sink = await apply_all([gift("g1"), gift("g2", customer_id="c2")], ledger)
    assert len(issued(sink)) == 2 and ledger.rewards["rw-coffee"].redeemed == 3
    with pytest.raises(CouponGrantRefused, match="out of stock"):
        await apply_all([gift("g3")], ledger)


async def test_a_gift_outside_the_rewards_window_at_its_grant_is_refused() -> None:
    ledger = catalogue(ends_at=NOW - timedelta(days=1))
    with pytest.raises(CouponGrantRefused):
        await apply_all([gift()], ledger)
    assert ledger.coupons == {}


async def test_a_gift_granted_while_open_is_given_though_the_reward_closed_since() -> None:
    ledger = catalogue(ends_at=NOW - timedelta(days=1))
    await apply_all([gift(at=NOW - timedelta(days=2))], ledger)
    assert ledger.coupon_of("g1").expires_at == NOW - timedelta(days=2 - VALIDITY)


async def test_a_batch_of_points_grants_asks_nothing_of_the_catalogue() -> None:
    ledger = catalogue()
    await apply_all([factories.engagement_rewarded("c1", grant_id="p1", points=5, at=NOW)], ledger)
    assert "rewards_of" not in ledger.calls and "take_stock" not in ledger.calls


# -- revoked -------------------------------------------------------------------------------


async def test_a_revoked_gift_voids_its_unused_coupon_and_takes_no_points() -> None:
    ledger = catalogue()
    await apply_all([enrolled(), gift()], ledger)
    sink = await apply_all([revoked()], ledger)
    coupon = ledger.coupon_of("g1")
    assert (coupon.status, coupon.revoked_at) == (CouponStatus.VOIDED, NOW)
    assert sink.events == []  # no event tells of a voided coupon
    balance = ledger.balance("c1")
    assert (balance.available, balance.debt) == (100, 0)
    with pytest.raises(CouponVoided):
        take(coupon, honoured_by=None, partner_id=None, store_id=None, purchase_id=None, now=NOW)


async def test_a_revoked_gift_used_already_stays_used_and_makes_no_debt() -> None:
    ledger = catalogue()
    await apply_all([enrolled(), gift()], ledger)
    used = take(
        ledger.coupon_of("g1"),
        honoured_by="caffe-nord",
        partner_id="caffe-nord",
        store_id="s1",
        purchase_id=None,
        now=NOW,
    )
    ledger.coupons[used.coupon_id] = used
    sink = await apply_all([revoked()], ledger)
    coupon = ledger.coupon_of("g1")
    assert (coupon.status, coupon.revoked_at, coupon.redeemed_at) == (
        CouponStatus.REDEEMED,
        NOW,
        NOW,
    )
    assert sink.events == []
    balance = ledger.balance("c1")
    assert (balance.available, balance.debt) == (100, 0)


async def test_a_gift_revoked_twice_keeps_its_first_revocation() -> None:
    ledger = catalogue()
    await apply_all([gift()], ledger)
    await apply_all([revoked()], ledger)
    later = factories.engagement_reward_revoked("c1", "g1", at=NOW + timedelta(hours=1))
    await apply_all([later], ledger)
    assert ledger.coupon_of("g1").revoked_at == NOW


async def test_a_gift_revoked_before_it_came_issues_nothing() -> None:
    ledger = catalogue()
    await apply_all([revoked()], ledger)
    sink = await apply_all([gift()], ledger)
    assert (ledger.coupons, sink.events) == ({}, [])
    in_one = catalogue()
    assert (await apply_all([revoked(), gift()], in_one)).events == []
    assert in_one.coupons == {}


async def test_in_one_batch_a_gift_then_its_revocation_keep_a_voided_coupon_untold() -> None:
    ledger = catalogue()
    sink = await apply_all([gift(), revoked()], ledger)
    assert ledger.coupon_of("g1").status is CouponStatus.VOIDED
    assert issued(sink) == []


def test_a_coupon_voided_is_voided_whatever_the_time_and_redemptions_refuse_it_first() -> None:
    coupon = replace(
        gift_coupon(a_gift(), coffee(), issued_before=0, code="X"),
        status=CouponStatus.VOIDED,
        revoked_at=NOW,
    )
    assert status_at(coupon, NOW + timedelta(days=999)) is CouponStatus.VOIDED
    assert revoke_gift(coupon, NOW, NOW) is None  # recorded once


def test_an_expired_gift_only_records_its_revocation_and_a_redemption_is_no_gift() -> None:
    coupon = gift_coupon(a_gift(), coffee(), issued_before=0, code="X")
    late = NOW + timedelta(days=VALIDITY)
    revoked_late = revoke_gift(coupon, late, late)
    assert revoked_late is not None
    assert (revoked_late.status, revoked_late.revoked_at) == (CouponStatus.ISSUED, late)
    assert status_at(revoked_late, late) is CouponStatus.EXPIRED
    assert revoke_gift(replace(coupon, grant_id=None), NOW, NOW) is None


# -- expiry gives nothing back -------------------------------------------------------------


def test_an_expired_gift_gives_no_points_back_even_under_refund_points() -> None:
    coupon = gift_coupon(a_gift(), coffee(), issued_before=0, code="X")
    later = NOW + timedelta(days=VALIDITY + 1)
    # An allocation under the gift's redemption id (none should exist) is not given back.
    drawn = [Allocation("g1", "lot-1", 10)]
    [(expired, back)] = expire_all([coupon], {}, drawn, {"lot-1": None}, later, refund=True)
    assert (expired.status, expired.points_returned, back) == (CouponStatus.EXPIRED, 0, None)


# -- invariants ----------------------------------------------------------------------------

_STEP = st.tuples(st.sampled_from(["gift", "revoke"]), st.sampled_from(["g1", "g2", "g3"]))


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(st.lists(_STEP, min_size=1, max_size=5), min_size=1, max_size=4))
def test_a_grant_gives_at_most_one_coupon_told_once_and_a_revoked_one_is_never_usable(
    batches: list[list[tuple[str, str]]],
) -> None:
    asyncio.run(_check_gifts(batches))


async def _check_gifts(batches: list[list[tuple[str, str]]]) -> None:
    ledger = catalogue()
    told: list[str] = []
    revoked_ids: set[str] = set()
    for n, batch in enumerate(batches):
        events_ = [
            replace_id(gift(g) if kind == "gift" else revoked(g), f"e{n}-{i}")
            for i, (kind, g) in enumerate(batch)
        ]
        sink = await apply_all(events_, ledger)
        told.extend(c.grant_id or "" for c in issued(sink))
        revoked_ids |= {g for kind, g in batch if kind == "revoke"}
    coupons: list[Coupon] = list(ledger.coupons.values())
    grants = [c.grant_id for c in coupons]
    assert len(grants) == len(set(grants))
    assert len(told) == len(set(told)) and set(told) <= set(grants)
    assert ledger.rewards["rw-coffee"].redeemed == len(coupons)
    for coupon in coupons:
        if coupon.grant_id in revoked_ids:
            assert coupon.status is CouponStatus.VOIDED
        else:
            assert coupon.status is CouponStatus.ISSUED and coupon.grant_id in told
