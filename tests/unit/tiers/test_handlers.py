"""The tiers handlers on a fake repository: no database, no Kafka."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import cast

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tiers.adapters.repository import TierRepository
from services.tiers.bootstrap import make_event_handler
from services.tiers.domain.model import CustomerTier, Program, QualifyingActivity, TierChange
from services.tiers.handlers import HANDLERS, Context
from shared import events, topics
from shared.clock import FixedClock
from shared.events import CloudEvent, derived_event_id, new_event
from shared.outbox import CollectingSink

NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
ENROLLED_AT = NOW - timedelta(days=40)


class FakeTiers:
    def __init__(self) -> None:
        self.customers: dict[str, CustomerTier] = {}
        self.activity: dict[str, QualifyingActivity] = {}
        self.history: list[TierChange] = []
        self.locked: list[str] = []

    async def enrol(self, customer: CustomerTier) -> None:
        known = self.customers.get(customer.customer_id)
        if known is None:
            self.customers[customer.customer_id] = customer
        elif known.enrolled_at is None:
            self.customers[customer.customer_id] = replace(known, enrolled_at=customer.enrolled_at)

    async def add_customer(self, customer: CustomerTier) -> bool:
        if customer.customer_id in self.customers:
            return False
        self.customers[customer.customer_id] = customer
        return True

    async def lock_customer(self, customer_id: str) -> CustomerTier | None:
        self.locked.append(customer_id)
        return self.customers.get(customer_id)

    async def record_activity(self, activity: QualifyingActivity) -> bool:
        if activity.activity_id in self.activity:
            return False
        self.activity[activity.activity_id] = activity
        return True

    async def activities(self, customer_id: str, since: datetime) -> list[QualifyingActivity]:
        return [
            a
            for a in self.activity.values()
            if a.customer_id == customer_id and a.occurred_at >= since
        ]

    async def apply_change(self, change: TierChange) -> None:
        self.customers[change.customer_id] = replace(
            self.customers[change.customer_id],
            tier=change.to_tier,
            since=change.effective_at,
            review_at=change.review_at,
        )
        self.history.append(change)


def _conforms(fake: FakeTiers) -> TierRepository:
    return fake  # mypy checks the fake against the Protocol here


def enrolled(customer_id: str = "c1") -> CloudEvent:
    return new_event(
        events.CustomerEnrolled(
            customer_id=customer_id, partner_id="demo", enrolled_at=ENROLLED_AT
        ),
        source="ingest/demo",
        subject=customer_id,
        time=ENROLLED_AT,
    )


def purchase(purchase_id: str, total: str, at: datetime = NOW, currency: str = "EUR") -> CloudEvent:
    return new_event(
        events.PurchaseCompleted(
            purchase_id=purchase_id,
            partner_id="demo",
            customer_id="c1",
            occurred_at=at,
            currency=currency,
            total=Decimal(total),
        ),
        source="ingest/demo",
        subject="c1",
        time=at,
    )


def refund(refund_id: str, purchase_id: str, amount: str, at: datetime = NOW) -> CloudEvent:
    return new_event(
        events.PurchaseRefunded(
            refund_id=refund_id,
            purchase_id=purchase_id,
            partner_id="demo",
            customer_id="c1",
            occurred_at=at,
            amount=Decimal(amount),
        ),
        source="ingest/demo",
        subject="c1",
        time=at,
    )


@pytest.fixture
def tiers() -> FakeTiers:
    return FakeTiers()


@pytest.fixture
def sink() -> CollectingSink:
    return CollectingSink()


async def apply(event: CloudEvent, tiers: FakeTiers, sink: CollectingSink) -> None:
    context = Context(tiers=_conforms(tiers), sink=sink, program=Program(), now=NOW)
    await HANDLERS[event.type](event, context)


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
    assert (topic, key, event.source, event.subject) == (topics.TIERS, "c1", "tiers", "c1")
    assert event.id == derived_event_id(second.id, "tier-changed")
    change = events.TierChanged.model_validate(event.data)
    assert (change.from_tier, change.to_tier, change.direction) == ("bronze", "silver", "up")
    assert change.reason == "qualifying_spend"
    assert change.effective_at == NOW
    assert change.review_at == NOW + timedelta(days=365)
    customer = tiers.customers["c1"]
    assert (customer.tier, customer.since, customer.review_at) == ("silver", NOW, change.review_at)
    assert [(h.from_tier, h.to_tier) for h in tiers.history] == [("bronze", "silver")]
    assert tiers.locked == ["c1", "c1"]


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


def test_tiers_acts_on_customers_and_purchases_only() -> None:
    assert set(HANDLERS) == {
        events.CUSTOMER_ENROLLED,
        events.PURCHASE_COMPLETED,
        events.PURCHASE_REFUNDED,
    }


async def test_events_of_other_types_are_ignored_without_touching_the_database() -> None:
    updated = new_event(
        events.CustomerUpdated(customer_id="c1", partner_id="demo", enrolled_at=ENROLLED_AT),
        source="ingest/demo",
        subject="c1",
        time=NOW,
    )
    handle = make_event_handler(Program(), FixedClock(NOW))
    # No connection at all: any use of it would fail.
    await handle(cast(AsyncConnection, None), updated)
