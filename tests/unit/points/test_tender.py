"""Points as tender: a purchase names the redemption that paid for part of it, and its
refunds give those points back in proportion, to the lots they came from; the issuing partner
on every lot."""

import asyncio
from dataclasses import replace
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.points.domain.lots import Allocation, balance_of, spend
from services.points.domain.model import EntryKind, LedgerEntry, Program
from services.points.domain.refunds import PurchaseRecord, RefundRecord
from services.points.domain.tender import RETURN_REASON, returns, slices, spent_by
from services.points.handlers import Context, apply_batch
from shared.messaging import events
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from shared.observability.metrics import TENDER_LINKS_REFUSED
from tests.support import factories
from tests.support.fakes.points import FakeLedger
from tests.support.points import NOW, apply_all, enrolled

# The welcome bonus (100, partner "demo") and a lot of 400 from "other", expiring sooner.
SOONER = NOW + timedelta(days=30)


def _lot(entry_id: str, points: int, expires_in: timedelta, partner: str | None) -> LedgerEntry:
    return LedgerEntry(
        entry_id=entry_id,
        customer_id="c1",
        kind=EntryKind.EARN,
        points=points,
        reason="purchase",
        occurred_at=NOW - timedelta(days=300),
        available_at=NOW - timedelta(days=300),
        expires_at=NOW + expires_in,
        partner_id=partner,
    )


async def _member(ledger: FakeLedger) -> None:
    await apply_all([enrolled()], ledger)
    ledger.ledger["lot-other"] = _lot("lot-other", 400, timedelta(days=30), "other")


def _redeem(
    ledger: FakeLedger,
    points: int,
    redemption_id: str = "red1",
    customer_id: str = "c1",
    reward_id: str | None = None,
) -> None:
    entry, drawn = spend(
        ledger.entries(customer_id),
        [a for _, a in ledger.allocations],
        kind=EntryKind.REDEEM,
        entry_id=redemption_id,
        customer_id=customer_id,
        points=points,
        reason="paid with points",
        now=NOW,
    )
    ledger.ledger[entry.entry_id] = replace(entry, partner_id="shop", reward_id=reward_id)
    ledger.allocations.extend((customer_id, a) for a in drawn)


def _paid(
    purchase_id: str, total: str, redemption_id: str | None = "red1", customer: str = "c1"
) -> CloudEvent:
    return factories.purchase(
        customer,
        total,
        at=NOW,
        purchase_id=purchase_id,
        partner_id="shop",
        redemption_id=redemption_id,
    )


def _shop_refund(refund_id: str, purchase_id: str, amount: str) -> CloudEvent:
    return factories.refund(
        "c1", purchase_id, amount, refund_id=refund_id, at=NOW, partner_id="shop"
    )


def _returned(sink: CollectingSink) -> list[tuple[int, str]]:
    return [
        (event.data["points"], event.data["expires_at"])
        for _, _, event in sink.events
        if event.type == events.POINTS_EARNED and event.data["reason"] == RETURN_REASON
    ]


async def test_a_purchase_is_linked_to_the_redemption_that_paid_for_part_of_it() -> None:
    ledger = FakeLedger()
    await _member(ledger)
    _redeem(ledger, 450)

    await apply_all([_paid("p1", "20.00")], ledger)

    assert ledger.purchases["shop:p1"].redemption_id == "red1"
    assert "link_redemptions" in ledger.calls


async def test_a_full_refund_gives_every_spent_point_back_to_the_lots_it_came_from() -> None:
    ledger = FakeLedger()
    await _member(ledger)
    before = ledger.balance("c1")
    _redeem(ledger, 450)  # 400 of "other" (sooner), then 50 of the welcome bonus
    await apply_all([_paid("p1", "20.00")], ledger)

    sink = await apply_all([_shop_refund("r1", "p1", "20.00")], ledger)

    after = ledger.balance("c1")
    # The 20 points the purchase earned are reversed; the 450 spent come back.
    assert after.available == before.available
    assert after.next_expiries == before.next_expiries
    assert sorted(_returned(sink)) == sorted(
        [(400, SOONER.isoformat().replace("+00:00", "Z")), (50, _welcome_expiry(ledger))]
    )
    give_back = ledger.ledger["tender:shop:r1"]
    assert (give_back.kind, give_back.points, give_back.partner_id) == (
        EntryKind.RELEASE,
        450,
        "shop",
    )


def _welcome_expiry(ledger: FakeLedger) -> str:
    welcome = next(e for e in ledger.entries("c1") if e.reason == "welcome")
    assert welcome.expires_at is not None
    return welcome.expires_at.isoformat().replace("+00:00", "Z")


async def test_partial_refunds_add_up_and_a_redelivery_gives_nothing_twice() -> None:
    ledger = FakeLedger()
    await _member(ledger)
    _redeem(ledger, 301)
    await apply_all([_paid("p1", "30.00")], ledger)

    first = await apply_all([_shop_refund("r1", "p1", "10.00")], ledger)
    again = await apply_all([_shop_refund("r1", "p1", "10.00")], ledger)
    rest = await apply_all([_shop_refund("r2", "p1", "20.00")], ledger)

    # floor(301 * 10 / 30) = 100, then 301 - 100.
    assert sum(p for p, _ in _returned(first)) == 100
    assert _returned(again) == []
    assert sum(p for p, _ in _returned(rest)) == 201


async def test_spent_points_whose_lot_has_expired_are_not_given_back() -> None:
    ledger = FakeLedger()
    await _member(ledger)
    _redeem(ledger, 450)
    await apply_all([_paid("p1", "20.00")], ledger)

    later = Context(ledger=ledger, sink=CollectingSink(), program=Program(), now=SOONER)
    await apply_batch([_shop_refund("r1", "p1", "20.00")], later)

    # The 400 of the lot expired at SOONER stay spent; the welcome bonus's 50 come back.
    assert ledger.ledger["tender:shop:r1"].points == 50
    assert [a.lot_id for c, a in ledger.allocations if a.entry_id == "tender:shop:r1"] == [
        next(e.entry_id for e in ledger.entries("c1") if e.reason == "welcome")
    ]


async def test_a_refund_in_the_batch_of_its_purchase_gives_the_points_back_too() -> None:
    ledger = FakeLedger()
    await _member(ledger)
    _redeem(ledger, 200)

    await apply_all([_paid("p1", "20.00"), _shop_refund("r1", "p1", "20.00")], ledger)

    assert ledger.ledger["tender:shop:r1"].points == 200


async def test_a_redemption_pays_for_one_purchase_of_its_own_customer() -> None:
    ledger = FakeLedger()
    await _member(ledger)
    await apply_all([enrolled("c2")], ledger)
    _redeem(ledger, 50)
    _redeem(ledger, 10, redemption_id="coupon-red", reward_id="rw1")
    refused_before = _refused("redemption-used")

    await apply_all(
        [
            _paid("p1", "5.00"),
            _paid("p2", "5.00"),  # the same redemption again, in the same batch
            _paid("p3", "5.00", redemption_id="nowhere"),
            _paid("p4", "5.00", customer="c2"),  # another customer's
            _paid("p5", "5.00", redemption_id="coupon-red"),  # a reward's: its coupon pays
        ],
        ledger,
    )
    await apply_all([_paid("p6", "5.00")], ledger)  # and again, later

    links = {key: p.redemption_id for key, p in ledger.purchases.items()}
    assert links == {f"shop:p{n}": ("red1" if n == 1 else None) for n in range(1, 7)}
    assert _refused("redemption-used") == refused_before + 2


def _refused(reason: str) -> float:
    value = TENDER_LINKS_REFUSED.labels(reason=reason)._value.get()
    return float(value)


async def test_a_purchase_refunded_without_a_linked_redemption_gives_no_points_back() -> None:
    ledger = FakeLedger()
    await _member(ledger)
    _redeem(ledger, 50)
    await apply_all([_paid("p1", "5.00", redemption_id="nowhere")], ledger)

    sink = await apply_all([_shop_refund("r1", "p1", "5.00")], ledger)

    assert _returned(sink) == []
    assert "tender:shop:r1" not in ledger.ledger


async def test_every_lot_names_the_partner_that_issued_it() -> None:
    ledger = FakeLedger()
    await apply_all(
        [
            factories.enrolment("ref", at=NOW, partner_id="p-a"),
            factories.enrolment("c9", at=NOW, partner_id="p-b", referred_by="ref"),
            factories.purchase("c9", "10.00", at=NOW, purchase_id="x1", partner_id="p-c"),
        ],
        ledger,
    )
    issuers = {(e.customer_id, e.reason): e.partner_id for e in ledger.ledger.values()}
    assert issuers == {
        ("ref", "welcome"): "p-a",
        ("c9", "welcome"): "p-b",
        ("c9", "purchase"): "p-c",
        ("ref", "referral"): "p-c",
    }


def test_a_voided_hold_named_by_a_purchase_has_nothing_left_to_give_back() -> None:
    lot = _lot("l1", 100, timedelta(days=10), "a")
    hold = LedgerEntry("h1", "c1", EntryKind.HOLD, -60, "till", NOW, NOW, partner_id="shop")
    drawn = [Allocation("h1", "l1", 60), Allocation("h1:void", "l1", -60)]
    purchase = PurchaseRecord("shop:p1", "c1", "p1", Decimal(10), 10, "shop", "h1")
    refunds = [RefundRecord("shop:r1", "shop:p1", "c1", "r1", Decimal(10), NOW)]

    assert spent_by("h1", [lot, hold], drawn) == []
    assert returns([lot, hold], drawn, purchase=purchase, refunds=refunds, now=NOW) == []


@settings(max_examples=30, deadline=None)
@given(
    total_cents=st.integers(min_value=1, max_value=10_000_000),
    spent=st.integers(min_value=1, max_value=100_000),
    cuts=st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=6),
)
def test_slices_follow_each_other_and_a_whole_refund_accounts_for_every_point(
    total_cents: int, spent: int, cuts: list[int]
) -> None:
    total = Decimal(total_cents) / 100
    amounts = _amounts(total, cuts, complete=True)
    refunds = [RefundRecord(f"k{n}", "k", "c1", f"r{n}", a, NOW) for n, a in enumerate(amounts)]

    due = slices(spent, total, refunds)

    assert all(start <= end for _, start, end in due)
    assert [start for _, start, _ in due[1:]] == [end for _, _, end in due[:-1]]
    assert (due[0][1], due[-1][2]) == (0, spent)


def _amounts(total: Decimal, cuts: list[int], *, complete: bool) -> list[Decimal]:
    weights = sum(cuts)
    amounts = [
        (total * cut / weights).quantize(Decimal("0.01"), rounding=ROUND_DOWN) for cut in cuts
    ]
    if complete:
        amounts[-1] += total - sum(amounts)
    return [a for a in amounts if a > 0]


@settings(max_examples=60, deadline=None)
@given(
    total_cents=st.integers(min_value=100, max_value=1_000_000),
    spent=st.integers(min_value=1, max_value=450),
    rate=st.sampled_from(["0.1", "0.5", "1", "2"]),
    cuts=st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=5),
    complete=st.booleans(),
    expire_first_lot=st.booleans(),
)
def test_buy_with_points_refund_and_keep_the_price_in_points_is_impossible(
    total_cents: int,
    spent: int,
    rate: str,
    cuts: list[int],
    complete: bool,
    expire_first_lot: bool,
) -> None:
    """Whatever the purchase's total, the points spent on it, the earn rate and the partial
    refunds: the member never holds more than before the purchase plus what the part kept
    earned less what it cost in points; refunded whole, never more than before, and exactly
    the unexpired spent points come back."""
    total = Decimal(total_cents) / 100
    amounts = _amounts(total, cuts, complete=complete)
    program = Program(points_per_unit=Decimal(rate))
    # Refunds processed once the 400 points of "other" have expired, or before.
    refund_time = SOONER if expire_first_lot else NOW

    async def scenario() -> None:
        ledger = FakeLedger()
        await _member(ledger)
        before = ledger.balance("c1").available
        _redeem(ledger, spent)
        drawn = {a.lot_id: a.points for _, a in ledger.allocations if a.entry_id == "red1"}
        await apply_all([_paid("p1", str(total))], ledger, program=program)
        earned = sum(e.points for e in ledger.entries("c1") if e.reason == "purchase")
        context = Context(ledger=ledger, sink=CollectingSink(), program=program, now=refund_time)
        for n, amount in enumerate(amounts):
            await apply_batch([_shop_refund(f"r{n}", "p1", str(amount))], context)
        refunded = min(sum(amounts, Decimal(0)), total)
        kept = total - refunded
        given_back = sum(e.points for e in ledger.entries("c1") if e.entry_id.startswith("tender:"))
        # Without the purchase, what the member would hold at the refunds' time.
        expired = 400 if expire_first_lot else 0
        lost_to_expiry = drawn.get("lot-other", 0) if expire_first_lot else 0
        balance = balance_of(
            "c1", ledger.entries("c1"), refund_time, [a for _, a in ledger.allocations]
        )
        holds = balance.available + balance.pending - balance.debt
        assert given_back <= spent * refunded / total
        # The goods kept cost their share of the points spent; they earned their share.
        assert holds < before - expired - spent * kept / total + earned * kept / total + 1
        if refunded == total:
            assert given_back == spent - lost_to_expiry
            assert holds == before - expired

    asyncio.run(scenario())
