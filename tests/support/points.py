"""What the points unit tests share: one instant, the events they feed the handlers (built by
tests.support.factories with the defaults these tests use), and applying a batch."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from services.points.domain.earning import Campaign
from services.points.domain.model import Program
from services.points.handlers import Context, apply_batch
from shared.messaging import events
from shared.messaging.events import CloudEvent, new_event
from shared.messaging.outbox import CollectingSink
from tests.support import factories

if TYPE_CHECKING:
    from services.points import ports

NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)


def enrolled(customer_id: str = "c1", referred_by: str | None = None) -> CloudEvent:
    return factories.enrolment(customer_id, at=NOW, referred_by=referred_by)


def updated(customer_id: str = "c1") -> CloudEvent:
    payload = events.CustomerUpdated(customer_id=customer_id, partner_id="demo", enrolled_at=NOW)
    return factories.ingest_event(payload, customer_id, NOW, "demo")


def purchase(
    purchase_id: str,
    total: str,
    currency: str = "EUR",
    customer_id: str = "c1",
    at: datetime = NOW,
) -> CloudEvent:
    return factories.purchase(customer_id, total, at=at, purchase_id=purchase_id, currency=currency)


def basket(purchase_id: str, at: datetime = NOW, customer_id: str = "c1") -> CloudEvent:
    """Two coffees at 5.00 and a bread at 20.00, sold for 30.00."""
    return factories.purchase(
        customer_id,
        "30.00",
        at=at,
        purchase_id=purchase_id,
        store_id="s1",
        items=[
            events.PurchaseItem(
                sku="esp", category="coffee", quantity=Decimal(2), unit_price=Decimal(5)
            ),
            events.PurchaseItem(
                sku="rye", category="bread", quantity=Decimal(1), unit_price=Decimal(20)
            ),
        ],
    )


def refund(refund_id: str, purchase_id: str, amount: str, customer_id: str = "c1") -> CloudEvent:
    return factories.refund(customer_id, purchase_id, amount, refund_id=refund_id, at=NOW)


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


async def apply_all(
    batch: Sequence[CloudEvent],
    ledger: ports.ConsumerRepository,
    sink: CollectingSink | None = None,
    program: Program | None = None,
) -> CollectingSink:
    """Applies the batch as the consumer would, at NOW; the events it caused."""
    sink = sink if sink is not None else CollectingSink()
    context = Context(ledger=ledger, sink=sink, program=program or Program(), now=NOW)
    await apply_batch(batch, context)
    return sink
