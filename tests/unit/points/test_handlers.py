"""The points handlers on a fake ledger: no database, no Kafka."""

from datetime import UTC, datetime, timedelta

import pytest

from services.points.bootstrap import CONSUMES, make_subscription
from services.points.domain.model import Program, TierAssignment
from services.points.handlers import HANDLED_TYPES
from shared.clock import FixedClock
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent, derived_event_id, new_event
from shared.messaging.outbox import CollectingSink, emit
from tests.support.fakes.points import FakeLedger
from tests.support.points import (
    NOW,
    apply_all,
    basket,
    double_coffee,
    enrolled,
    purchase,
    refund,
    replace_id,
    tier_change,
    updated,
)


@pytest.fixture
def ledger() -> FakeLedger:
    return FakeLedger()


@pytest.fixture
def sink() -> CollectingSink:
    return CollectingSink()


async def apply(event: CloudEvent, ledger: FakeLedger, sink: CollectingSink) -> None:
    await apply_all([event], ledger, sink)


def earned_points(sink: CollectingSink) -> list[tuple[str, int]]:
    return [(event.subject, event.data["points"]) for _, _, event in sink.events]


# -- one event at a time -------------------------------------------------------------------


async def test_enrolment_grants_the_welcome_bonus_once(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    await apply(enrolled(), ledger, sink)
    await apply(replace_id(enrolled(), "another-event-id"), ledger, sink)
    assert [e.points for e in ledger.entries("c1")] == [100]
    [(topic, key, earned)] = sink.events
    assert (topic, key, earned.type) == ("fedelta.points.v1", "c1", events.POINTS_EARNED)
    assert earned.data["reason"] == "welcome"
    assert earned.data["rule_ids"] == ["welcome"]


async def test_purchases_earn_base_points_and_announce_them(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    await apply(purchase("p1", "300.00"), ledger, sink)
    await apply(purchase("p2", "49.99"), ledger, sink)
    assert sorted(e.points for e in ledger.entries("c1")) == [49, 300]
    assert [event.data["points"] for _, _, event in sink.events] == [300, 49]
    assert [event.data["rule_ids"] for _, _, event in sink.events] == [["base"], ["base"]]


async def test_a_purchase_worth_no_whole_point_records_and_announces_nothing(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    await apply(purchase("p1", "0.99"), ledger, sink)
    assert ledger.ledger == {}
    assert sink.events == []


async def test_the_same_purchase_under_another_event_id_earns_once(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    first = purchase("p1", "300.00")
    await apply(first, ledger, sink)
    await apply(replace_id(first, "redelivered-with-new-id"), ledger, sink)
    assert [e.points for e in ledger.entries("c1")] == [300]
    assert len(sink.events) == 1


async def test_a_purchase_in_another_currency_is_refused(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    with pytest.raises(ValueError, match="USD"):
        await apply(purchase("p1", "10.00", currency="USD"), ledger, sink)
    assert ledger.ledger == {}
    assert sink.events == []


async def test_tier_changes_keep_the_latest(ledger: FakeLedger, sink: CollectingSink) -> None:
    await apply(tier_change("gold", 20), ledger, sink)
    await apply(tier_change("silver", 10), ledger, sink)
    assert ledger.tiers["c1"].tier == "gold"
    assert sink.events == []


# -- whole batches -------------------------------------------------------------------------


def mixed_batch() -> list[CloudEvent]:
    """Three customers' events interleaved as one poll may return them, with duplicates."""
    p2 = purchase("p2", "20.50", customer_id="c2")
    return [
        enrolled("c1"),
        purchase("p1", "10.00", customer_id="c1"),
        enrolled("c2"),
        tier_change("silver", 12, customer_id="c1"),
        p2,
        purchase("p3", "0.50", customer_id="c3"),
        replace_id(p2, "the-same-purchase-again"),
        replace_id(enrolled("c2"), "the-same-enrolment-again"),
        tier_change("gold", 11, customer_id="c1"),
        purchase("p4", "7.00", customer_id="c1"),
        purchase("p5", "3.00", customer_id="c3"),
    ]


async def test_a_batch_has_the_effects_of_its_events_applied_one_by_one() -> None:
    batch = mixed_batch()
    one_by_one, one_by_one_sink = FakeLedger(), CollectingSink()
    for event in batch:
        await apply(event, one_by_one, one_by_one_sink)
    together, together_sink = FakeLedger(), CollectingSink()
    await apply_all(batch, together, together_sink)

    assert together.ledger == one_by_one.ledger
    assert together.customers == one_by_one.customers
    assert together.tiers == one_by_one.tiers
    assert [event.model_dump() for _, _, event in together_sink.events] == [
        event.model_dump() for _, _, event in one_by_one_sink.events
    ]
    assert earned_points(together_sink) == [
        ("c1", 100),
        ("c1", 10),
        ("c2", 100),
        ("c2", 20),
        ("c1", 8),  # silver by then (the later-effective change wins): 7 * 1.25
        ("c3", 3),
    ]
    assert together.tiers["c1"].tier == "silver"


async def test_a_batch_applied_again_changes_nothing(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    batch = mixed_batch()
    await apply_all(batch, ledger, sink)
    entries, tiers, announced = dict(ledger.ledger), dict(ledger.tiers), len(sink.events)
    await apply_all(batch, ledger, sink)
    await apply_all(batch[3:], ledger, sink)  # a part of it, as the consumer's bisection does
    assert ledger.ledger == entries
    assert ledger.tiers == tiers
    assert len(sink.events) == announced


async def test_a_batch_costs_the_same_few_calls_whatever_its_size(sink: CollectingSink) -> None:
    small, large = FakeLedger(), FakeLedger()
    unguarded = Program(max_points_per_day=0)  # the velocity guard's look-ups aside
    await apply_all(
        [purchase("p0", "5.00", customer_id="c0"), enrolled("c0")], small, sink, unguarded
    )
    await apply_all(
        [
            event
            for n in range(500)
            for event in (enrolled(f"c{n}"), purchase(f"p{n}", "5.00", customer_id=f"c{n}"))
        ],
        large,
        sink,
        unguarded,
    )
    assert (
        small.calls
        == large.calls
        == [
            "add_customers",
            "buyers_of",
            "campaigns_during",
            "targeting_of",  # segments and personal offers (issue 21)
            "record",
            "record_purchases",
            "debtors",
        ]
    )
    assert len(large.ledger) == 1000


async def test_a_batch_asks_about_refunds_only_when_it_holds_some(sink: CollectingSink) -> None:
    """A purchase finds the refunds that came before it through `record_purchases`; only a
    batch with refunds in it looks up purchases and refunds."""
    ledger = FakeLedger()
    unguarded = Program(max_points_per_day=0)  # the guard looks purchases up: it is off here
    batch = [purchase("p1", "10.00"), purchase("p2", "20.00")]
    await apply_all(batch, ledger, sink, unguarded)
    assert "purchases_of" not in ledger.calls
    assert "refunds_of" not in ledger.calls
    ledger.calls.clear()
    refunded = refund("r1", "p1", "10.00")
    await apply_all([refunded], ledger, sink, unguarded)
    assert ledger.calls[:2] == ["purchases_of", "refunds_of"]
    assert ledger.balance("c1").available == 20


async def test_only_the_latest_tier_change_of_a_customer_is_written(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    await apply(tier_change("platinum", 5), ledger, sink)
    await apply_all(
        [tier_change("silver", 10), tier_change("gold", 20), tier_change("silver", 15)],
        ledger,
        sink,
    )
    assert ledger.tiers["c1"] == TierAssignment("c1", "gold", NOW.replace(day=20))


async def test_a_batch_with_a_foreign_currency_purchase_raises_before_writing(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    """The consumer then splits the batch and applies everything but that purchase."""
    batch = [enrolled("c1"), purchase("p1", "10.00", currency="USD"), purchase("p2", "5.00")]
    with pytest.raises(ValueError, match="USD"):
        await apply_all(batch, ledger, sink)
    assert ledger.calls == []
    assert sink.events == []


async def test_events_of_other_types_are_passed_over_without_touching_the_ledger(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    badge = new_event(
        events.BadgeEarned(customer_id="c1", badge="Regular", challenge_id="ch1", earned_at=NOW),
        source="engagement",
        subject="c1",
        time=NOW,
    )
    await apply(badge, ledger, sink)
    assert ledger.calls == []
    assert sink.events == []


async def test_the_latest_profile_alone_enrols_a_customer_the_ledger_never_saw(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    """After compaction a fresh consumer may see only the latest customer.updated."""
    await apply(updated("c1"), ledger, sink)
    assert [(e.reason, e.points) for e in ledger.entries("c1")] == [("welcome", 100)]
    assert [event.type for _, _, event in sink.events] == [events.POINTS_EARNED]


async def test_a_profile_update_of_a_known_customer_grants_nothing_more(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    await apply(enrolled("c1"), ledger, sink)
    await apply(updated("c1"), ledger, sink)
    assert [e.reason for e in ledger.entries("c1")] == ["welcome"]
    assert len(sink.events) == 1


async def test_points_earned_is_the_event_emit_would_build(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    """The handler's points.earned must not differ by a byte from the one `emit` builds from
    a validated PointsEarned."""
    at = datetime(2026, 1, 31, 23, 59, 58, 123456, tzinfo=UTC)
    cause = purchase("p1", "12.34", at=at)
    await apply(cause, ledger, sink)
    [(topic, key, built)] = sink.events

    expected = CollectingSink()
    await emit(
        expected,
        events.PointsEarned(
            customer_id="c1",
            points=12,
            purchase_id="p1",
            reason="purchase",
            rule_ids=["base"],
            available_at=at,
            expires_at=datetime(2027, 1, 31, 23, 59, 58, 123456, tzinfo=UTC),
        ),
        source="points",
        customer_id="c1",
        time=NOW,
        cause_id=cause.id,
        purpose="points-earned",
    )
    [(expected_topic, expected_key, wanted)] = expected.events
    assert (topic, key) == (expected_topic, expected_key) == (topics.POINTS, "c1")
    assert built.model_dump(mode="json") == wanted.model_dump(mode="json")
    assert built.to_bytes() == wanted.to_bytes()
    assert built.id == derived_event_id(cause.id, "points-earned")
    assert CloudEvent.from_bytes(built.to_bytes()).data_as(events.PointsEarned).points == 12


def test_points_subscribes_to_five_topics_and_acts_on_eleven_types() -> None:
    subscription = make_subscription(Program(), FixedClock(NOW))
    assert (
        subscription.topics
        == CONSUMES
        == (topics.CUSTOMERS, topics.PURCHASES, topics.TIERS, topics.ENGAGEMENT, topics.SEGMENTS)
    )
    assert subscription.event_types == HANDLED_TYPES
    assert set(HANDLED_TYPES) == {
        events.CUSTOMER_ENROLLED,
        events.CUSTOMER_UPDATED,
        events.PURCHASE_COMPLETED,
        events.PURCHASE_REFUNDED,
        events.TIER_CHANGED,
        events.POINTS_IMPORTED,
        events.ENGAGEMENT_REWARDED,
        events.ENGAGEMENT_REWARD_REVOKED,
        events.SEGMENT_ENTERED,
        events.SEGMENT_LEFT,
        events.CUSTOMER_ERASED,
    }


# -- earning by the formula ---------------------------------------------------------------


async def test_a_silver_customer_in_a_coffee_campaign_earns_by_the_formula(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    ledger.campaigns.append(double_coffee(validity_days=60))
    await apply_all([tier_change("silver", 1), basket("p1")], ledger, sink)

    # coffee 10 * 1.25 * 2 + bread 20 * 1.25 = 50 in all; without the campaign, 37.5 -> 37.
    # The campaign's validity is for its own 13 points: they are a lot of their own.
    purchase_lot, campaign_lot = ledger.entries("c1")
    assert (purchase_lot.points, campaign_lot.points) == (37, 13)
    assert purchase_lot.rule_ids == ("base", "tier:silver")
    assert campaign_lot.rule_ids == ("campaign:coffee2x",)
    assert purchase_lot.expires_at == datetime(2027, 11, 22, 10, 15, tzinfo=UTC)
    assert campaign_lot.expires_at == NOW + timedelta(days=60)
    assert campaign_lot.entry_id == "purchase:demo:p1:campaign"
    earned = [event.data_as(events.PointsEarned) for _, _, event in sink.events]
    assert [(e.points, e.rule_ids, e.expires_at) for e in earned] == [
        (37, ["base", "tier:silver"], purchase_lot.expires_at),
        (13, ["campaign:coffee2x"], NOW + timedelta(days=60)),
    ]
    assert len({event.id for _, _, event in sink.events}) == 2


async def test_a_tier_change_later_in_the_batch_does_not_reach_back(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    await apply_all([basket("p1"), tier_change("gold", 1), basket("p2")], ledger, sink)
    assert [(e.points, e.rule_ids) for e in ledger.entries("c1")] == [
        (30, ("base",)),
        (45, ("base", "tier:gold")),
    ]


async def test_a_campaign_applies_by_the_purchase_time_not_the_processing_time(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    ledger.campaigns.append(double_coffee())
    long_ago = NOW - timedelta(days=10)
    await apply_all([basket("p1", at=long_ago), basket("p2")], ledger, sink)
    assert [e.points for e in ledger.entries("c1")] == [30, 40]


async def test_the_welcome_bonus_records_its_rule(ledger: FakeLedger, sink: CollectingSink) -> None:
    await apply(enrolled(), ledger, sink)
    [entry] = ledger.entries("c1")
    assert entry.rule_ids == ("welcome",)
    [(_, _, earned)] = sink.events
    assert earned.data_as(events.PointsEarned).rule_ids == ["welcome"]
