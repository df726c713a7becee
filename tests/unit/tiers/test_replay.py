"""The replay's reading of the topics, pure: what each record means to a rebuild, and what is
skipped as the live consumer would refuse it."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.tiers.adapters.replay_reader import read_records
from services.tiers.domain.model import Program, TierDefinition
from services.tiers.usecases.replay import program_text
from shared.messaging import events
from shared.messaging.events import new_event
from shared.messaging.kafka import EVENT_TYPE_HEADER

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Record:
    """What aiokafka hands over, as far as the replay looks."""

    topic: str
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def record(payload: events.Payload, customer_id: str = "c1") -> Record:
    event = new_event(payload, source="ingest/demo", subject=customer_id, time=AT)
    return Record(event.topic, event.to_bytes(), [(EVENT_TYPE_HEADER, event.type.encode())])


def purchase(purchase_id: str, total: str, currency: str = "EUR") -> Record:
    return record(
        events.PurchaseCompleted(
            purchase_id=purchase_id,
            partner_id="demo",
            customer_id="c1",
            occurred_at=AT,
            currency=currency,
            total=Decimal(total),
        )
    )


def enrolment(customer_id: str, at: datetime) -> Record:
    return record(
        events.CustomerEnrolled(customer_id=customer_id, partner_id="demo", enrolled_at=at),
        customer_id,
    )


def test_purchases_refunds_and_enrolments_become_the_facts_a_rebuild_needs() -> None:
    refund = record(
        events.PurchaseRefunded(
            refund_id="r1",
            purchase_id="p1",
            partner_id="demo",
            customer_id="c1",
            occurred_at=AT + timedelta(days=2),
            amount=Decimal("40"),
        )
    )
    batch = read_records(
        [purchase("p1", "100"), refund, enrolment("c2", AT - timedelta(days=9))], Program()
    )
    assert (batch.events, batch.skipped) == (3, 0)
    assert {a.activity_id: a.amount for a in batch.activities.values()} == {
        "purchase:demo:p1": Decimal("100"),
        "refund:demo:r1": Decimal("-40"),
    }
    assert batch.refunded == {"refund:demo:r1": "purchase:demo:p1"}
    assert batch.enrolments == {"c1": None, "c2": AT - timedelta(days=9)}


def test_a_buyer_enrolled_later_in_the_batch_gets_the_enrolment() -> None:
    batch = read_records([purchase("p1", "100"), enrolment("c1", AT)], Program())
    assert batch.enrolments == {"c1": AT}


def test_a_purchase_carried_twice_is_kept_once() -> None:
    batch = read_records([purchase("p1", "100"), purchase("p1", "100")], Program())
    assert list(batch.activities) == ["purchase:demo:p1"]


def test_what_the_live_consumer_refuses_is_skipped_and_counted() -> None:
    poison = Record("fedelta.purchases.v1", b"{not json")
    other = purchase("p2", "100", currency="USD")
    batch = read_records([poison, other, purchase("p1", "100")], Program())
    assert (batch.events, batch.skipped) == (1, 2)
    assert list(batch.activities) == ["purchase:demo:p1"]


def test_tombstones_and_other_event_types_are_passed_over() -> None:
    erased = Record("fedelta.customers.v1", None)
    unrelated = record(
        events.TierChanged(
            customer_id="c1",
            from_tier="bronze",
            to_tier="silver",
            direction="up",
            reason="qualifying_spend",
            effective_at=AT,
            review_at=AT + timedelta(days=365),
        )
    )
    unannounced = Record(unrelated.topic, unrelated.value)  # no type header: parsed, then left
    batch = read_records([erased, unrelated, unannounced], Program())
    assert (batch.events, batch.skipped, batch.activities, batch.enrolments) == (0, 0, {}, {})


def test_a_replay_resumes_only_the_program_it_started_with() -> None:
    assert program_text(Program()) == program_text(Program())
    raised = Program(
        tiers=(
            TierDefinition("bronze", Decimal(0)),
            TierDefinition("silver", Decimal(1000)),
        )
    )
    assert program_text(raised) != program_text(Program())
