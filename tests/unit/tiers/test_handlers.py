"""The tiers handlers on a fake repository: no database, no Kafka."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.tiers.bootstrap import CONSUMES, make_subscription
from services.tiers.domain.model import Program
from services.tiers.handlers import HANDLED_TYPES, Context, apply_batch
from services.tiers.programs import ProgramSource
from shared.clock import FixedClock
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent, derived_event_id, new_event
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.tiers import FakeTiers

NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
ENROLLED_AT = NOW - timedelta(days=40)


def enrolled(customer_id: str = "c1") -> CloudEvent:
    return factories.enrolment(customer_id, at=ENROLLED_AT)


def purchase(
    purchase_id: str,
    total: str,
    at: datetime = NOW,
    currency: str = "EUR",
    customer_id: str = "c1",
) -> CloudEvent:
    return factories.purchase(customer_id, total, at=at, purchase_id=purchase_id, currency=currency)


def refund(
    refund_id: str, purchase_id: str, amount: str, at: datetime = NOW, customer_id: str = "c1"
) -> CloudEvent:
    return factories.refund(customer_id, purchase_id, amount, at=at, refund_id=refund_id)


@pytest.fixture
def tiers() -> FakeTiers:
    return FakeTiers()


@pytest.fixture
def sink() -> CollectingSink:
    return CollectingSink()


async def apply_all(batch: list[CloudEvent], tiers: FakeTiers, sink: CollectingSink) -> None:
    context = Context(tiers=tiers, sink=sink, program=Program(), now=NOW)
    await apply_batch(batch, context)


async def apply(event: CloudEvent, tiers: FakeTiers, sink: CollectingSink) -> None:
    await apply_all([event], tiers, sink)


def tier_changes(sink: CollectingSink) -> list[events.TierChanged]:
    return [
        events.TierChanged.model_validate(event.data)
        for _, _, event in sink.events
        if event.type == events.TIER_CHANGED
    ]


async def test_enrolment_starts_a_customer_at_bronze_reviewed_a_year_later(
    tiers: FakeTiers, sink: CollectingSink
) -> None:
    await apply(enrolled(), tiers, sink)
    customer = tiers.customers["c1"]
    assert (customer.tier, customer.since, customer.enrolled_at) == (
        "bronze",
        ENROLLED_AT,
        ENROLLED_AT,
    )
    assert customer.review_at == ENROLLED_AT + timedelta(days=365)
    assert sink.events == []


async def test_purchases_of_300_then_250_move_bronze_to_silver_once(
    tiers: FakeTiers, sink: CollectingSink
) -> None:
    await apply(enrolled(), tiers, sink)
    first = purchase("p1", "300", at=NOW - timedelta(hours=1))
    second = purchase("p2", "250")
    await apply(first, tiers, sink)
    assert sink.events == []
    await apply(second, tiers, sink)

    [(topic, key, event)] = sink.events
    assert (topic, key, event.source, event.subject) == (
        topics.TIERS,
        "c1",
        "urn:fedelta:tiers",
        "c1",
    )
    assert event.id == derived_event_id(second.id, "tier-changed")
    change = events.TierChanged.model_validate(event.data)
    assert (change.from_tier, change.to_tier, change.direction) == ("bronze", "silver", "up")
    assert change.reason == "qualifying_spend"
    assert change.effective_at == NOW
    assert change.review_at == NOW + timedelta(days=365)
    customer = tiers.customers["c1"]
    assert (customer.tier, customer.since, customer.review_at) == ("silver", NOW, change.review_at)
    assert [(h.from_tier, h.to_tier) for h in tiers.history] == [("bronze", "silver")]
    assert tiers.locked == [["c1"], ["c1"], ["c1"]]


async def test_one_big_purchase_goes_from_bronze_straight_to_gold(
    tiers: FakeTiers, sink: CollectingSink
) -> None:
    await apply(purchase("p1", "2500"), tiers, sink)
    assert [(c.from_tier, c.to_tier) for c in tier_changes(sink)] == [("bronze", "gold")]


async def test_a_refund_announces_nothing_and_never_downgrades(
    tiers: FakeTiers, sink: CollectingSink
) -> None:
    await apply(purchase("p1", "600", at=NOW - timedelta(days=1)), tiers, sink)
    assert len(sink.events) == 1
    await apply(refund("r1", "p1", "600"), tiers, sink)
    assert len(sink.events) == 1
    assert tiers.customers["c1"].tier == "silver"
    assert tiers.activity["refund:demo:r1"].amount == Decimal("-600")


async def test_a_refund_lowers_the_spend_later_purchases_are_judged_on(
    tiers: FakeTiers, sink: CollectingSink
) -> None:
    await apply(purchase("p1", "400", at=NOW - timedelta(days=2)), tiers, sink)
    await apply(refund("r1", "p1", "100", at=NOW - timedelta(days=1)), tiers, sink)
    await apply(purchase("p2", "150"), tiers, sink)
    assert tier_changes(sink) == []
    await apply(purchase("p3", "50"), tiers, sink)
    assert [c.to_tier for c in tier_changes(sink)] == ["silver"]


async def test_the_same_purchase_under_another_event_id_counts_once(
    tiers: FakeTiers, sink: CollectingSink
) -> None:
    await apply(purchase("p1", "300"), tiers, sink)
    await apply(purchase("p1", "300"), tiers, sink)  # new_event gives it a fresh id
    assert sum(a.amount for a in tiers.activity.values()) == Decimal("300")
    assert sink.events == []


async def test_a_purchase_first_creates_the_customer_and_the_enrolment_keeps_their_tier(
    tiers: FakeTiers, sink: CollectingSink
) -> None:
    await apply(purchase("p1", "700"), tiers, sink)
    await apply(enrolled(), tiers, sink)
    customer = tiers.customers["c1"]
    assert (customer.tier, customer.since, customer.enrolled_at) == ("silver", NOW, ENROLLED_AT)


async def test_a_purchase_in_another_currency_is_refused(
    tiers: FakeTiers, sink: CollectingSink
) -> None:
    with pytest.raises(ValueError, match="USD"):
        await apply(purchase("p1", "900", currency="USD"), tiers, sink)
    assert tiers.activity == {}
    assert sink.events == []


def test_tiers_subscribes_to_customers_and_purchases_and_acts_on_five_types() -> None:
    subscription = make_subscription(ProgramSource(Program()), FixedClock(NOW))
    assert subscription.topics == CONSUMES == (topics.CUSTOMERS, topics.PURCHASES)
    assert subscription.event_types == HANDLED_TYPES
    assert set(HANDLED_TYPES) == {
        events.CUSTOMER_ENROLLED,
        events.CUSTOMER_UPDATED,
        events.PURCHASE_COMPLETED,
        events.PURCHASE_REFUNDED,
        events.POINTS_IMPORTED,
    }


async def test_events_of_other_types_are_passed_over_without_touching_the_repository(
    tiers: FakeTiers, sink: CollectingSink
) -> None:
    erased = new_event(
        events.CustomerErased(customer_id="c1"), source="ingest/demo", subject="c1", time=NOW
    )
    await apply(erased, tiers, sink)
    assert tiers.calls == []
    assert sink.events == []


def updated(customer_id: str = "c1", enrolled_at: datetime = ENROLLED_AT) -> CloudEvent:
    return new_event(
        events.CustomerUpdated(
            customer_id=customer_id, partner_id="demo", enrolled_at=enrolled_at, version=3
        ),
        source="ingest/demo",
        subject=customer_id,
        time=NOW,
    )


async def test_the_latest_profile_alone_enrols_a_customer_compaction_left_without_enrolment(
    tiers: FakeTiers, sink: CollectingSink
) -> None:
    await apply(updated(), tiers, sink)
    customer = tiers.customers["c1"]
    assert (customer.tier, customer.since, customer.enrolled_at) == (
        "bronze",
        ENROLLED_AT,
        ENROLLED_AT,
    )
    assert customer.review_at == ENROLLED_AT + timedelta(days=365)
    assert sink.events == []


async def test_a_profile_update_changes_nothing_of_an_enrolled_customer(
    tiers: FakeTiers, sink: CollectingSink
) -> None:
    await apply(enrolled(), tiers, sink)
    await apply(purchase("p1", "600"), tiers, sink)
    before = tiers.customers["c1"]
    await apply(updated(enrolled_at=ENROLLED_AT - timedelta(days=99)), tiers, sink)
    assert tiers.customers["c1"] == before
    assert len(tier_changes(sink)) == 1


async def test_a_profile_update_dates_the_enrolment_of_a_customer_first_seen_buying(
    tiers: FakeTiers, sink: CollectingSink
) -> None:
    await apply(purchase("p1", "100"), tiers, sink)
    await apply(updated(), tiers, sink)
    customer = tiers.customers["c1"]
    assert (customer.tier, customer.since, customer.enrolled_at) == (
        "bronze",
        ENROLLED_AT,
        ENROLLED_AT,
    )


# -- batches --------------------------------------------------------------------------------


def many_customers_story() -> list[CloudEvent]:
    """Several customers' events interleaved as partitions deliver them: enrolments before
    and after purchases, crossings within the batch, a purchase reported late, refunds, one
    purchase carried by two events, and a customer who reaches the top."""
    hour = timedelta(hours=1)
    story: list[CloudEvent] = []
    for n in range(6):
        c = f"c{n}"
        story += [
            purchase(f"{c}-p1", "300", at=NOW - 50 * hour, customer_id=c),
            enrolled(c) if n % 2 else refund(f"{c}-r1", f"{c}-p1", "40", NOW - 49 * hour, c),
            purchase(f"{c}-p2", "250", at=NOW - 40 * hour, customer_id=c),
            purchase(f"{c}-p2", "250", at=NOW - 40 * hour, customer_id=c),  # again, new id
            purchase(f"{c}-p3", str(300 * n + 1), at=NOW - 30 * hour, customer_id=c),
            purchase(f"{c}-late", "1500", at=NOW - 45 * hour, customer_id=c),
            enrolled(c),
            purchase(f"{c}-p4", "4000", at=NOW - 20 * hour, customer_id=c),
        ]
    # Interleave the customers, each one's own events staying in order.
    return [story[i + 8 * n] for i in range(8) for n in range(6)]


def outcome(tiers: FakeTiers, sink: CollectingSink) -> tuple[object, ...]:
    return (
        tiers.customers,
        tiers.activity,
        sorted(tiers.history, key=lambda h: (h.customer_id, h.effective_at)),
        sorted((key, event.id, event.data) for _, key, event in sink.events),
    )


async def test_a_batch_gives_exactly_what_its_events_one_at_a_time_give() -> None:
    story = many_customers_story()
    one_by_one, one_by_one_sink = FakeTiers(), CollectingSink()
    for event in story:
        await apply(event, one_by_one, one_by_one_sink)
    batched, batched_sink = FakeTiers(), CollectingSink()
    await apply_all(story, batched, batched_sink)

    assert outcome(batched, batched_sink) == outcome(one_by_one, one_by_one_sink)
    # The story does move tiers, so the comparison is not between two empty results.
    assert {h.to_tier for h in batched.history} == {"silver", "gold", "platinum"}
    assert len(batched_sink.events) == len(batched.history) >= 12
    # One customer's changes keep their order in the history.
    c5 = [(h.from_tier, h.to_tier) for h in batched.history if h.customer_id == "c5"]
    assert c5 == [(h.from_tier, h.to_tier) for h in one_by_one.history if h.customer_id == "c5"]


@pytest.mark.parametrize("split", [1, 7, 20, 33, 47])
async def test_a_batch_split_anywhere_gives_the_same_result(split: int) -> None:
    """The consumer may apply a batch in parts (isolating a failing event)."""
    story = many_customers_story()
    whole, whole_sink = FakeTiers(), CollectingSink()
    await apply_all(story, whole, whole_sink)
    parts, parts_sink = FakeTiers(), CollectingSink()
    await apply_all(story[:split], parts, parts_sink)
    await apply_all(story[split:], parts, parts_sink)
    assert outcome(parts, parts_sink) == outcome(whole, whole_sink)


async def test_a_later_purchase_in_the_batch_is_judged_on_the_earlier_ones_spend(
    tiers: FakeTiers, sink: CollectingSink
) -> None:
    first = purchase("p1", "300", at=NOW - timedelta(hours=1))
    second = purchase("p2", "250")
    third = purchase("p3", "1500")
    await apply_all([enrolled(), first, second, third], tiers, sink)

    assert [(c.from_tier, c.to_tier) for c in tier_changes(sink)] == [
        ("bronze", "silver"),
        ("silver", "gold"),
    ]
    assert [event.id for _, _, event in sink.events] == [
        derived_event_id(second.id, "tier-changed"),
        derived_event_id(third.id, "tier-changed"),
    ]
    assert [(h.from_tier, h.to_tier) for h in tiers.history] == [
        ("bronze", "silver"),
        ("silver", "gold"),
    ]
    customer = tiers.customers["c1"]
    assert (customer.tier, customer.since, customer.enrolled_at) == ("gold", NOW, ENROLLED_AT)


async def test_a_batch_costs_one_repository_call_per_step_whatever_its_size(
    tiers: FakeTiers, sink: CollectingSink
) -> None:
    batch = [
        purchase(f"p{n}", "30", at=NOW - timedelta(minutes=1000 - n), customer_id=f"c{n % 50}")
        for n in range(1000)
    ]
    await apply_all(batch, tiers, sink)
    assert tiers.calls == [
        "add_customers",
        "lock_customers",
        "buckets_since",
        "record_activities",
        "save_customers",
        "append_history",
    ]
    # 20 purchases of 30 each: every customer crossed into silver once.
    assert len(tier_changes(sink)) == 50
    assert {c.tier for c in tiers.customers.values()} == {"silver"}


async def test_every_customer_of_a_batch_is_locked_at_once_in_id_order(
    tiers: FakeTiers, sink: CollectingSink
) -> None:
    batch = [
        purchase("p1", "10", customer_id="c3"),
        enrolled("c1"),
        refund("r1", "p0", "5", customer_id="c9"),
        purchase("p2", "10", customer_id="c2"),
    ]
    await apply_all(batch, tiers, sink)
    # The refund's customer is not locked: a refund is recorded only.
    assert tiers.locked == [["c1", "c2", "c3"]]
    assert "c9" not in tiers.customers
    assert tiers.activity["refund:demo:r1"].amount == Decimal("-5")


async def test_a_batch_delivered_again_under_new_event_ids_changes_nothing(
    tiers: FakeTiers, sink: CollectingSink
) -> None:
    story = many_customers_story()
    await apply_all(story, tiers, sink)
    before = outcome(tiers, sink)
    again = [event.model_copy(update={"id": f"{event.id}-again"}) for event in story]
    await apply_all(again, tiers, sink)
    assert outcome(tiers, sink) == before


async def test_one_purchase_twice_in_a_batch_counts_once(
    tiers: FakeTiers, sink: CollectingSink
) -> None:
    await apply_all([purchase("p1", "300"), purchase("p1", "300")], tiers, sink)
    assert sum(a.amount for a in tiers.activity.values()) == Decimal("300")
    await apply(purchase("p2", "199.99"), tiers, sink)
    assert sink.events == []


async def test_a_foreign_currency_purchase_fails_its_batch_before_anything_is_written(
    tiers: FakeTiers, sink: CollectingSink
) -> None:
    batch = [purchase("p1", "900"), purchase("p2", "900", currency="USD", customer_id="c2")]
    with pytest.raises(ValueError, match="USD"):
        await apply_all(batch, tiers, sink)
    assert tiers.calls == []
    assert sink.events == []
