"""Engagement's rewards in points (issue 20): a grant of points is a lot once per grant id,
a revocation takes it back like a refund's reversal (debt rules of §3), once, and a grant
revoked before it came is never credited; a grant of a reward the catalogue does not know is
refused (one it knows is a gift coupon: test_gift_coupons.py)."""

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.points.domain.engagement import (
    CouponGrantRefused,
    Revocation,
    grant_entry_id,
    revocation_entry_id,
    take_back_grant,
)
from services.points.domain.lots import Allocation, expire, remaining_of_lots, spend
from services.points.domain.model import EntryKind, LedgerEntry, Program, RefundPolicy
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.points import FakeLedger
from tests.support.points import NOW, apply_all, enrolled, purchase, replace_id


def granted(
    points: int | None = 50, grant_id: str = "g1", customer_id: str = "c1", **fields: object
) -> CloudEvent:
    return factories.engagement_rewarded(
        customer_id,
        grant_id=grant_id,
        points=points,
        at=NOW,
        **fields,  # type: ignore[arg-type]
    )


def revoked(
    grant_id: str = "g1", customer_id: str = "c1", refund_id: str | None = None
) -> CloudEvent:
    return factories.engagement_reward_revoked(customer_id, grant_id, refund_id=refund_id, at=NOW)


def of_type(sink: CollectingSink, event_type: str) -> list[CloudEvent]:
    return [event for _, _, event in sink.events if event.type == event_type]


def redeem(ledger: FakeLedger, points: int, customer_id: str = "c1") -> None:
    entry, drawn = spend(
        ledger.entries(customer_id),
        [a for _, a in ledger.allocations],
        kind=EntryKind.REDEEM,
        entry_id=f"spent-{len(ledger.ledger)}",
        customer_id=customer_id,
        points=points,
        reason="reward",
        now=NOW,
    )
    ledger.ledger[entry.entry_id] = entry
    ledger.allocations.extend((customer_id, a) for a in drawn)


# -- granting ------------------------------------------------------------------------------


async def test_a_grant_of_points_is_an_available_lot_and_one_points_earned() -> None:
    ledger = FakeLedger()
    sink = await apply_all(
        [granted(80, reason="challenge", rule_id="ch-7", name="Five visits", purchase_id="p9")],
        ledger,
    )
    [lot] = ledger.entries("c1")
    assert (lot.entry_id, lot.kind, lot.points) == (grant_entry_id("g1"), EntryKind.BONUS, 80)
    assert lot.reason == "challenge: Five visits"
    assert lot.rule_ids == ("challenge:ch-7",)
    assert (lot.available_at, lot.expires_at) == (NOW, Program().expiry_for(NOW))
    assert lot.partner_id is None  # the program's own
    assert ledger.balance("c1").available == 80
    [(topic, key, earned)] = sink.events
    assert (topic, key, earned.type) == (topics.POINTS, "c1", events.POINTS_EARNED)
    data = earned.data_as(events.PointsEarned)
    assert (data.points, data.purchase_id, data.reason) == (80, "p9", "challenge: Five visits")
    assert data.rule_ids == ["challenge:ch-7"]
    assert (data.available_at, data.expires_at) == (NOW, Program().expiry_for(NOW))


async def test_the_same_grant_under_another_event_id_is_credited_once() -> None:
    ledger = FakeLedger()
    first = await apply_all([granted()], ledger)
    again = await apply_all([replace_id(granted(), "another-event")], ledger)
    both = await apply_all([granted(grant_id="g2"), granted(grant_id="g2")], FakeLedger())
    assert ledger.balance("c1").available == 50
    assert len(of_type(first, events.POINTS_EARNED)) == 1
    assert again.events == []
    assert len(of_type(both, events.POINTS_EARNED)) == 1


async def test_a_grant_before_the_enrolment_is_kept_for_the_member() -> None:
    ledger = FakeLedger()
    await apply_all([granted(30)], ledger)
    await apply_all([enrolled()], ledger)
    assert ledger.balance("c1").available == 130  # the grant and the welcome bonus


async def test_a_grant_pays_the_debt_first() -> None:
    ledger = FakeLedger()
    await apply_all([enrolled(), purchase("p1", "50.00")], ledger)
    redeem(ledger, 150)
    await apply_all([factories.refund("c1", "p1", "50.00", refund_id="r1", at=NOW)], ledger)
    assert ledger.balance("c1").debt == 50
    await apply_all([granted(80)], ledger)
    balance = ledger.balance("c1")
    assert (balance.available, balance.debt) == (30, 0)


async def test_a_grant_of_a_reward_unknown_to_the_catalogue_is_refused_and_records_nothing() -> (
    None
):
    # A known reward's grant is a gift coupon (tests/unit/points/test_gift_coupons.py).
    ledger = FakeLedger()
    with pytest.raises(CouponGrantRefused) as refused:
        await apply_all([granted(None, reward_id="rw-coffee")], ledger)
    assert isinstance(refused.value, ValueError)  # the consumer sets the event aside alone
    assert ledger.ledger == {}
    assert ledger.coupons == {}
    assert ledger.calls == ["claim_grants", "rewards_of"]  # the grant's claim is rolled back


async def test_a_batch_of_many_grants_costs_one_call_per_step() -> None:
    ledger = FakeLedger()
    batch = [granted(10, grant_id=f"g{n}", customer_id=f"c{n % 7}") for n in range(40)]
    sink = await apply_all(batch, ledger)
    assert len(of_type(sink, events.POINTS_EARNED)) == 40
    assert ledger.calls == ["claim_grants", "record", "debtors"]


# -- revoking ------------------------------------------------------------------------------


async def test_a_revocation_takes_the_grant_back_once() -> None:
    ledger = FakeLedger()
    await apply_all([enrolled(), granted(50)], ledger)
    first = await apply_all([revoked(refund_id="r-42")], ledger)
    again = await apply_all([replace_id(revoked(refund_id="r-42"), "another-event")], ledger)
    assert ledger.balance("c1").available == 100
    [reversal] = of_type(first, events.POINTS_REVERSED)
    data = reversal.data_as(events.PointsReversed)
    assert (data.customer_id, data.points, data.refund_id) == ("c1", 50, "r-42")
    assert again.events == []
    [entry] = [e for e in ledger.entries("c1") if e.kind is EntryKind.REVERSE]
    assert (entry.entry_id, entry.points) == (revocation_entry_id("g1"), -50)


async def test_a_revocation_without_a_refund_names_the_grant() -> None:
    ledger = FakeLedger()
    await apply_all([granted(50)], ledger)
    sink = await apply_all([revoked()], ledger)
    [reversal] = of_type(sink, events.POINTS_REVERSED)
    assert reversal.data["refund_id"] == "g1"


async def test_spent_points_of_a_revoked_grant_become_debt_the_next_earning_repays() -> None:
    ledger = FakeLedger()
    await apply_all([enrolled(), granted(50)], ledger)
    redeem(ledger, 130)
    sink = await apply_all([revoked()], ledger)
    assert [e.data["points"] for e in of_type(sink, events.POINTS_REVERSED)] == [50]
    balance = ledger.balance("c1")
    assert (balance.available, balance.debt) == (0, 30)
    await apply_all([purchase("p1", "40.00")], ledger)
    balance = ledger.balance("c1")
    assert (balance.available, balance.debt) == (10, 0)


async def test_within_balance_a_revocation_takes_only_what_the_lots_hold() -> None:
    ledger = FakeLedger()
    program = Program(refund_policy="within_balance")
    await apply_all([enrolled(), granted(50)], ledger, program=program)
    redeem(ledger, 130)
    sink = await apply_all([revoked()], ledger, program=program)
    assert [e.data["points"] for e in of_type(sink, events.POINTS_REVERSED)] == [20]
    balance = ledger.balance("c1")
    assert (balance.available, balance.debt) == (0, 0)


async def test_a_revocation_before_its_grant_means_the_grant_is_never_credited() -> None:
    ledger = FakeLedger()
    early = await apply_all([enrolled(), revoked()], ledger)
    late = await apply_all([granted(50)], ledger)
    assert of_type(early, events.POINTS_REVERSED) == []
    assert late.events == []
    assert ledger.balance("c1").available == 100
    assert [e.entry_id for e in ledger.entries("c1") if e.entry_id.startswith("engagement")] == []


async def test_in_one_batch_a_revocation_first_leaves_the_grant_uncredited() -> None:
    ledger = FakeLedger()
    sink = await apply_all([revoked(), granted(50)], ledger)
    assert sink.events == []
    assert ledger.ledger == {}


async def test_in_one_batch_a_grant_then_its_revocation_earn_and_reverse_once() -> None:
    ledger = FakeLedger()
    sink = await apply_all([enrolled(), granted(50), revoked(), revoked()], ledger)
    assert [e.data["points"] for e in of_type(sink, events.POINTS_EARNED)] == [100, 50]
    assert [e.data["points"] for e in of_type(sink, events.POINTS_REVERSED)] == [50]
    assert ledger.balance("c1").available == 100


async def test_a_revoked_grant_delivered_again_is_not_credited_again() -> None:
    ledger = FakeLedger()
    await apply_all([granted(50)], ledger)
    await apply_all([revoked()], ledger)
    sink = await apply_all([replace_id(granted(50), "late-copy")], ledger)
    assert sink.events == []
    balance = ledger.balance("c1")
    assert (balance.available, balance.debt) == (0, 0)


async def test_the_expired_points_of_a_revoked_grant_are_not_taken_twice() -> None:
    ledger = FakeLedger()
    old = NOW - timedelta(days=400)
    await apply_all(
        [enrolled(), factories.engagement_rewarded("c1", grant_id="g1", points=50, at=old)], ledger
    )
    for entry, drawn in expire(ledger.entries("c1"), [a for _, a in ledger.allocations], NOW):
        ledger.ledger[entry.entry_id] = entry
        ledger.allocations.extend(("c1", a) for a in drawn)
    sink = await apply_all([revoked()], ledger)
    assert [e.data["points"] for e in of_type(sink, events.POINTS_REVERSED)] == [50]
    balance = ledger.balance("c1")
    assert (balance.available, balance.debt) == (100, 0)


# -- the take-back's invariants ------------------------------------------------------------


def lot(entry_id: str, points: int, expires_in_days: int) -> LedgerEntry:
    return LedgerEntry(
        entry_id=entry_id,
        customer_id="c1",
        kind=EntryKind.BONUS,
        points=points,
        reason="x",
        occurred_at=NOW - timedelta(days=1),
        available_at=NOW - timedelta(days=1),
        expires_at=NOW + timedelta(days=expires_in_days),
    )


@settings(max_examples=80, deadline=None)
@given(
    granted_points=st.integers(min_value=1, max_value=1_000),
    grant_expires_in=st.integers(min_value=-30, max_value=400),
    others=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=500), st.integers(min_value=-30, max_value=400)
        ),
        max_size=4,
    ),
    spent_share=st.integers(min_value=0, max_value=100),
    unlimited=st.booleans(),
)
def test_a_take_back_never_takes_more_than_granted_nor_more_than_a_lot_holds(
    granted_points: int,
    grant_expires_in: int,
    others: list[tuple[int, int]],
    spent_share: int,
    unlimited: bool,
) -> None:
    grant = lot(grant_entry_id("g1"), granted_points, grant_expires_in)
    entries = [grant, *(lot(f"l{n}", p, d) for n, (p, d) in enumerate(others))]
    live = [e for e in entries if e.expires_at is not None and e.expires_at > NOW]
    allocations: list[Allocation] = []
    to_spend = sum(e.points for e in live) * spent_share // 100
    if to_spend:
        spent, allocations = spend(
            entries,
            [],
            kind=EntryKind.REDEEM,
            entry_id="s",
            customer_id="c1",
            points=to_spend,
            reason="r",
            now=NOW,
        )
        entries.append(spent)
    revocation = Revocation("g1", "c1", NOW)
    policy: RefundPolicy = "unlimited" if unlimited else "within_balance"
    entry, drawn = take_back_grant(
        entries, allocations, grant=grant, revocation=revocation, policy=policy, now=NOW
    )
    taken = -entry.points
    covered = sum(a.points for a in drawn)
    assert 0 <= covered <= granted_points
    assert taken == (granted_points if unlimited else covered)
    left = remaining_of_lots(entries, [*allocations, *drawn])
    assert all(points >= 0 for points in left.values())
    assert all(a.points > 0 for a in drawn)
    # The grant's own lot is drawn on before any other.
    if any(a.lot_id != grant.entry_id and not a.lot_id.startswith("expired:") for a in drawn):
        assert grant.expires_at is None or grant.expires_at <= NOW or left[grant.entry_id] == 0
