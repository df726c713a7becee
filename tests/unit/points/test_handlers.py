"""The points handlers on a fake ledger: no database, no Kafka."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.points.domain.model import LedgerEntry, Program
from services.points.handlers import HANDLERS, Context
from shared import events
from shared.events import CloudEvent, new_event
from shared.outbox import CollectingSink

NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)


class FakeLedger:
    def __init__(self) -> None:
        self.customers: dict[str, str] = {}
        self.ledger: dict[str, LedgerEntry] = {}
        self.tiers: dict[str, tuple[str, datetime]] = {}

    async def add_customer(self, customer_id: str, partner_id: str, enrolled_at: datetime) -> bool:
        if customer_id in self.customers:
            return False
        self.customers[customer_id] = partner_id
        return True

    async def record(self, entry: LedgerEntry) -> bool:
        if entry.entry_id in self.ledger:
            return False
        self.ledger[entry.entry_id] = entry
        return True

    async def entries(self, customer_id: str) -> list[LedgerEntry]:
        return [e for e in self.ledger.values() if e.customer_id == customer_id]

    async def set_tier(self, customer_id: str, tier: str, effective_at: datetime) -> None:
        current = self.tiers.get(customer_id)
        if current is None or current[1] <= effective_at:
            self.tiers[customer_id] = (tier, effective_at)


def enrolled(customer_id: str = "c1") -> CloudEvent:
    return new_event(
        events.CustomerEnrolled(customer_id=customer_id, partner_id="demo", enrolled_at=NOW),
        source="ingest/demo",
        subject=customer_id,
        time=NOW,
    )


def purchase(purchase_id: str, total: str, currency: str = "EUR") -> CloudEvent:
    return new_event(
        events.PurchaseCompleted(
            purchase_id=purchase_id,
            partner_id="demo",
            customer_id="c1",
            occurred_at=NOW,
            currency=currency,
            total=Decimal(total),
        ),
        source="ingest/demo",
        subject="c1",
        time=NOW,
    )


@pytest.fixture
def ledger() -> FakeLedger:
    return FakeLedger()


@pytest.fixture
def sink() -> CollectingSink:
    return CollectingSink()


async def apply(event: CloudEvent, ledger: FakeLedger, sink: CollectingSink) -> None:
    await HANDLERS[event.type](event, Context(ledger=ledger, sink=sink, program=Program(), now=NOW))


async def test_enrolment_grants_the_welcome_bonus_once(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    await apply(enrolled(), ledger, sink)
    await apply(replace_id(enrolled(), "another-event-id"), ledger, sink)
    assert [e.points for e in await ledger.entries("c1")] == [100]
    [(topic, key, earned)] = sink.events
    assert (topic, key, earned.type) == ("fedelta.points.v1", "c1", events.POINTS_EARNED)
    assert earned.data["reason"] == "welcome"


async def test_purchases_earn_base_points_and_announce_them(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    await apply(purchase("p1", "300.00"), ledger, sink)
    await apply(purchase("p2", "49.99"), ledger, sink)
    assert sorted(e.points for e in await ledger.entries("c1")) == [49, 300]
    assert [event.data["points"] for _, _, event in sink.events] == [300, 49]


async def test_the_same_purchase_under_another_event_id_earns_once(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    first = purchase("p1", "300.00")
    await apply(first, ledger, sink)
    await apply(replace_id(first, "redelivered-with-new-id"), ledger, sink)
    assert [e.points for e in await ledger.entries("c1")] == [300]
    assert len(sink.events) == 1


async def test_a_purchase_in_another_currency_is_refused(
    ledger: FakeLedger, sink: CollectingSink
) -> None:
    with pytest.raises(ValueError, match="USD"):
        await apply(purchase("p1", "10.00", currency="USD"), ledger, sink)
    assert ledger.ledger == {}


async def test_tier_changes_keep_the_latest(ledger: FakeLedger, sink: CollectingSink) -> None:
    def change(to_tier: str, day: int) -> CloudEvent:
        at = NOW.replace(day=day)
        return new_event(
            events.TierChanged(
                customer_id="c1",
                from_tier="bronze",
                to_tier=to_tier,
                direction="up",
                reason="qualifying_spend",
                effective_at=at,
                review_at=at,
            ),
            source="tiers",
            subject="c1",
            time=at,
        )

    await apply(change("gold", 20), ledger, sink)
    await apply(change("silver", 10), ledger, sink)
    assert ledger.tiers["c1"][0] == "gold"


def replace_id(event: CloudEvent, event_id: str) -> CloudEvent:
    return event.model_copy(update={"id": event_id})
