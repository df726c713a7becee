"""Referrals: the referrer's bonus on the referred customer's first purchase, once."""

from shared.messaging.outbox import CollectingSink
from tests.support.fakes.points import FakeLedger
from tests.support.points import apply_all, enrolled, purchase


def referral_bonuses(sink: CollectingSink) -> list[tuple[str, int]]:
    return [
        (event.subject, event.data["points"])
        for _, _, event in sink.events
        if event.data.get("reason") == "referral"
    ]


async def test_the_referrer_gets_the_bonus_on_the_first_purchase_only() -> None:
    ledger = FakeLedger()
    await apply_all([enrolled("alice"), enrolled("bob", "alice")], ledger)
    first = await apply_all([purchase("p1", "10.00", customer_id="bob")], ledger)
    second = await apply_all([purchase("p2", "10.00", customer_id="bob")], ledger)
    assert referral_bonuses(first) == [("alice", 200)]
    assert referral_bonuses(second) == []
    assert ledger.balance("alice").available == 300
    assert ledger.balance("bob").available == 120


async def test_enrolment_without_a_purchase_grants_the_referrer_nothing() -> None:
    ledger = FakeLedger()
    sink = await apply_all([enrolled("alice"), enrolled("bob", "alice")], ledger)
    assert referral_bonuses(sink) == []


async def test_two_purchases_in_one_batch_grant_one_bonus() -> None:
    ledger = FakeLedger()
    sink = await apply_all(
        [
            enrolled("alice"),
            enrolled("bob", "alice"),
            purchase("p1", "10.00", customer_id="bob"),
            purchase("p2", "10.00", customer_id="bob"),
        ],
        ledger,
    )
    assert referral_bonuses(sink) == [("alice", 200)]


async def test_referring_oneself_grants_nothing() -> None:
    ledger = FakeLedger()
    await apply_all([enrolled("bob", "bob")], ledger)
    sink = await apply_all([purchase("p1", "10.00", customer_id="bob")], ledger)
    assert referral_bonuses(sink) == []
    assert ledger.balance("bob").available == 110


async def test_an_unknown_referrer_gets_nothing() -> None:
    ledger = FakeLedger()
    await apply_all([enrolled("bob", "nobody")], ledger)
    sink = await apply_all([purchase("p1", "10.00", customer_id="bob")], ledger)
    assert referral_bonuses(sink) == []
    assert ledger.entries("nobody") == []
