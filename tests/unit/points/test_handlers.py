"""The points handlers on a fake ledger: no database, no Kafka."""

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.points.adapters.repository import LedgerRepository
from services.points.bootstrap import CONSUMES, make_subscription
from services.points.domain.earning import Campaign
from services.points.domain.lots import Allocation, balance_of
from services.points.domain.model import (
    Balance,
    EntryKind,
    LedgerEntry,
    Member,
    Program,
    TierAssignment,
)
from services.points.domain.refunds import PurchaseRecord, RefundRecord, debts
from services.points.handlers import HANDLED_TYPES, Context, apply_batch
from shared.clock import FixedClock
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent, derived_event_id, new_event
from shared.messaging.outbox import CollectingSink, emit

NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)


class FakeLedger:
    """The set-based repository in memory; `calls` names each method called, in order, so a
    test can tell a batch costs one call per step, not one per event."""

    def __init__(self) -> None:
        self.customers: dict[str, Member] = {}
        self.ledger: dict[str, LedgerEntry] = {}
        self.tiers: dict[str, TierAssignment] = {}
        self.campaigns: list[Campaign] = []
        self.purchases: dict[str, PurchaseRecord] = {}
        self.refunds: list[RefundRecord] = []
        self.allocations: list[tuple[str, Allocation]] = []
        self.calls: list[str] = []

    async def add_customers(self, members: Sequence[Member]) -> set[str]:
        self.calls.append("add_customers")
        new: set[str] = set()
        for member in members:
            if member.customer_id not in self.customers:
                self.customers[member.customer_id] = member
                new.add(member.customer_id)
        return new

    async def record(self, entries: Sequence[LedgerEntry]) -> set[str]:
        self.calls.append("record")
        new: set[str] = set()
        for entry in entries:
            if entry.entry_id not in self.ledger:
                self.ledger[entry.entry_id] = entry
                new.add(entry.entry_id)
        return new

    async def buyers_of(
        self, customer_ids: Collection[str]
    ) -> tuple[dict[str, TierAssignment], dict[str, str]]:
        self.calls.append("buyers_of")
        tiers = {c: self.tiers[c] for c in customer_ids if c in self.tiers}
        referrers = {
            c: referrer
            for c in customer_ids
            if c in self.customers
            and (referrer := self.customers[c].referred_by) is not None
            and referrer != c
            and referrer in self.customers
        }
        return tiers, referrers

    async def set_tiers(self, assignments: Sequence[TierAssignment]) -> None:
        self.calls.append("set_tiers")
        customers = [a.customer_id for a in assignments]
        assert len(customers) == len(set(customers)), "at most one assignment per customer"
        for assignment in assignments:
            current = self.tiers.get(assignment.customer_id)
            if current is None or current.effective_at <= assignment.effective_at:
                self.tiers[assignment.customer_id] = assignment

    async def campaigns_during(self, earliest: datetime, latest: datetime) -> list[Campaign]:
        self.calls.append("campaigns_during")
        return [c for c in self.campaigns if c.starts_at <= latest and c.ends_at > earliest]

    async def earned_on(
        self, days: Collection[tuple[str, datetime, datetime]]
    ) -> dict[tuple[str, datetime], int]:
        self.calls.append("earned_on")
        earned: dict[tuple[str, datetime], int] = {}
        for entry in self.ledger.values():
            counted = entry.kind in (EntryKind.EARN, EntryKind.HELD)
            if not counted or entry.entry_id.startswith("released:"):
                continue
            for customer_id, start, end in days:
                if customer_id == entry.customer_id and start <= entry.occurred_at < end:
                    earned[customer_id, start] = earned.get((customer_id, start), 0) + entry.points
        return earned

    async def record_purchases(self, records: Sequence[PurchaseRecord]) -> set[str]:
        self.calls.append("record_purchases")
        keys = {record.purchase_key for record in records}
        for record in records:
            self.purchases.setdefault(record.purchase_key, record)
        return {r.purchase_key for r in self.refunds if r.purchase_key in keys}

    async def purchases_of(self, keys: Collection[str]) -> dict[str, PurchaseRecord]:
        self.calls.append("purchases_of")
        return {k: self.purchases[k] for k in keys if k in self.purchases}

    async def add_refunds(self, records: Sequence[RefundRecord]) -> None:
        self.calls.append("add_refunds")
        for record in records:
            if all(r.refund_key != record.refund_key for r in self.refunds):
                self.refunds.append(record)

    async def refunds_of(self, keys: Collection[str]) -> dict[str, list[RefundRecord]]:
        self.calls.append("refunds_of")
        found: dict[str, list[RefundRecord]] = {}
        for refund in self.refunds:
            if refund.purchase_key in keys:
                found.setdefault(refund.purchase_key, []).append(refund)
        return found

    async def debtors(self, customer_ids: Collection[str]) -> set[str]:
        self.calls.append("debtors")
        return {c for c in customer_ids if debts(self.entries(c), [a for _, a in self.allocations])}

    async def lock_customers(self, customer_ids: Collection[str]) -> None:
        self.calls.append("lock_customers")

    async def ledgers_of(
        self, customer_ids: Collection[str]
    ) -> tuple[dict[str, list[LedgerEntry]], list[Allocation]]:
        self.calls.append("ledgers_of")
        return {c: self.entries(c) for c in customer_ids}, [
            a for c, a in self.allocations if c in customer_ids
        ]

    async def record_allocations(self, drawn: Sequence[tuple[str, Allocation]]) -> None:
        self.calls.append("record_allocations")
        self.allocations.extend(drawn)

    def entries(self, customer_id: str) -> list[LedgerEntry]:
        return [e for e in self.ledger.values() if e.customer_id == customer_id]

    def balance(self, customer_id: str) -> Balance:
        return balance_of(
            customer_id, self.entries(customer_id), NOW, [a for _, a in self.allocations]
        )


def _conforms(fake: FakeLedger) -> LedgerRepository:
    return fake  # mypy checks the fake against the Protocol here


def enrolled(customer_id: str = "c1") -> CloudEvent:
    return new_event(
        events.CustomerEnrolled(customer_id=customer_id, partner_id="demo", enrolled_at=NOW),
        source="ingest/demo",
        subject=customer_id,
        time=NOW,
    )


def purchase(
    purchase_id: str,
    total: str,
    currency: str = "EUR",
    customer_id: str = "c1",
    at: datetime = NOW,
) -> CloudEvent:
    return new_event(
        events.PurchaseCompleted(
            purchase_id=purchase_id,
            partner_id="demo",
            customer_id=customer_id,
            occurred_at=at,
            currency=currency,
            total=Decimal(total),
        ),
        source="ingest/demo",
        subject=customer_id,
        time=at,
    )


def tier_change(to_tier: str, day: int, customer_id: str = "c1") -> CloudEvent:
    at = NOW.replace(day=day)
    return new_event(
        events.TierChanged(
            customer_id=customer_id,
            from_tier="bronze",
            to_tier=to_tier,
            direction="up",
            reason="qualifying_spend",
            effective_at=at,
            review_at=at,
        ),
        source="tiers",
        subject=customer_id,
        time=at,
    )


def replace_id(event: CloudEvent, event_id: str) -> CloudEvent:
    return event.model_copy(update={"id": event_id})


@pytest.fixture
def ledger() -> FakeLedger:
    return FakeLedger()


@pytest.fixture
def sink() -> CollectingSink:
    return CollectingSink()


async def apply_all(batch: Sequence[CloudEvent], ledger: FakeLedger, sink: CollectingSink) -> None:
    await apply_batch(batch, Context(ledger=ledger, sink=sink, program=Program(), now=NOW))


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
    await apply_all([purchase("p0", "5.00", customer_id="c0"), enrolled("c0")], small, sink)
    await apply_all(
        [
            event
            for n in range(500)
            for event in (enrolled(f"c{n}"), purchase(f"p{n}", "5.00", customer_id=f"c{n}"))
        ],
        large,
        sink,
    )
    assert (
        small.calls
        == large.calls
        == [
            "add_customers",
            "buyers_of",
            "campaigns_during",
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
    await apply_all([purchase("p1", "10.00"), purchase("p2", "20.00")], ledger, sink)
    assert "purchases_of" not in ledger.calls
    assert "refunds_of" not in ledger.calls
    ledger.calls.clear()
    refunded = new_event(
        events.PurchaseRefunded(
            refund_id="r1",
            purchase_id="p1",
            partner_id="demo",
            customer_id="c1",
            occurred_at=NOW,
            amount=Decimal("10.00"),
        ),
        source="ingest/demo",
        subject="c1",
        time=NOW,
    )
    await apply_all([refunded], ledger, sink)
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


def updated(customer_id: str = "c1") -> CloudEvent:
    return new_event(
        events.CustomerUpdated(customer_id=customer_id, partner_id="demo", enrolled_at=NOW),
        source="ingest/demo",
        subject=customer_id,
        time=NOW,
    )


async def test_events_of_other_types_are_passed_over_without_touching_the_ledger(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    erased = new_event(
        events.CustomerErased(customer_id="c1"), source="ingest/demo", subject="c1", time=NOW
    )
    await apply(erased, ledger, sink)
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
    """The handler builds the event without pydantic's validation: it must not differ by a
    byte from the one `emit` builds from a validated PointsEarned."""
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


def test_points_subscribes_to_three_topics_and_acts_on_five_types() -> None:
    subscription = make_subscription(Program(), FixedClock(NOW))
    assert subscription.topics == CONSUMES == (topics.CUSTOMERS, topics.PURCHASES, topics.TIERS)
    assert subscription.event_types == HANDLED_TYPES
    assert set(HANDLED_TYPES) == {
        events.CUSTOMER_ENROLLED,
        events.CUSTOMER_UPDATED,
        events.PURCHASE_COMPLETED,
        events.PURCHASE_REFUNDED,
        events.TIER_CHANGED,
    }


# -- earning by the formula ---------------------------------------------------------------


def basket(purchase_id: str, at: datetime = NOW, customer_id: str = "c1") -> CloudEvent:
    """Two coffees at 5.00 and a bread at 20.00, sold for 30.00."""
    return new_event(
        events.PurchaseCompleted(
            purchase_id=purchase_id,
            partner_id="demo",
            store_id="s1",
            customer_id=customer_id,
            occurred_at=at,
            currency="EUR",
            total=Decimal("30.00"),
            items=[
                events.PurchaseItem(
                    sku="esp", category="coffee", quantity=Decimal(2), unit_price=Decimal(5)
                ),
                events.PurchaseItem(
                    sku="rye", category="bread", quantity=Decimal(1), unit_price=Decimal(20)
                ),
            ],
        ),
        source="ingest/demo",
        subject=customer_id,
        time=at,
    )


def double_coffee(**fields: object) -> Campaign:
    values: dict[str, object] = {
        "campaign_id": "coffee2x",
        "name": "double coffee",
        "starts_at": NOW - timedelta(days=1),
        "ends_at": NOW + timedelta(days=1),
        "multiplier": Decimal(2),
        "category": "coffee",
    }
    values.update(fields)
    return Campaign(**values)  # type: ignore[arg-type]


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
