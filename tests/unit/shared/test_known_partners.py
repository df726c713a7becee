"""A consumer refuses events of partners ingest never provisioned (issue 19): the check in the
consumer's parse step on a fake partners topic, and what the partners reader keeps."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prometheus_client import REGISTRY

from shared.messaging import events
from shared.messaging.events import new_event
from shared.messaging.partners import KnownPartners, named_partner
from tests.support.factories import PARTNER, enrolment, points_redeemed, purchase
from tests.support.fakes.messaging import (
    NOW,
    TOPIC,
    FakeDatabase,
    FakeKnownPartners,
    FakeProducer,
    Message,
    RecordingHandler,
    fake_consumer,
)

ENROLMENTS = frozenset({events.CUSTOMER_ENROLLED})


def _refused(reason: str = "UnknownPartner") -> float:
    labels = {"consumer": "points", "topic": TOPIC, "reason": reason}
    return REGISTRY.get_sample_value("fedelta_events_refused_total", labels) or 0.0


def _records(*pairs: tuple[str, str]) -> tuple[list[Message], list[str]]:
    """(customer, partner) enrolments, in order."""
    built = [enrolment(customer, at=NOW, partner_id=partner) for customer, partner in pairs]
    return [Message.of(event, offset) for offset, event in enumerate(built)], [e.id for e in built]


async def test_an_event_of_an_unknown_partner_is_dead_lettered_counted_and_the_rest_applied() -> (
    None
):
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    partners = FakeKnownPartners({PARTNER: 0})
    records, ids = _records(("a", PARTNER), ("b", "nobody"), ("c", PARTNER))
    before = _refused()
    consumer = fake_consumer(handler, database=database, dead_letters=producer, partners=partners)
    await consumer.process_batch(records)
    assert database.applied == [ids[0], ids[2]]
    assert producer.dead_lettered_offsets() == [1]
    [(topic, value, _, headers)] = producer.sent
    assert (topic, value) == (f"{TOPIC}.dlq", records[1].value)
    assert headers["fedelta-error"] == b"UnknownPartner"
    assert _refused() == before + 1


async def test_a_partner_whose_record_comes_during_the_wait_is_known_and_nothing_refused() -> None:
    # The purchase was read before the partner's record (two topics, no order between them).
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    partners = FakeKnownPartners({PARTNER: 0, "new": 3}, wait_seconds=5.0)
    records, ids = _records(("a", "new"), ("b", PARTNER))
    consumer = fake_consumer(handler, database=database, dead_letters=producer, partners=partners)
    await consumer.process_batch(records)
    assert database.applied == ids
    assert producer.sent == []
    assert partners.reads == 3  # read on until it came, not to the deadline


async def test_a_batch_of_many_events_of_unknown_partners_waits_once() -> None:
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    partners = FakeKnownPartners({}, wait_seconds=0.05)
    pairs = [(f"c{n}", f"rogue-{n % 3}") for n in range(30)]
    records, _ = _records(*pairs)
    consumer = fake_consumer(handler, database=database, dead_letters=producer, partners=partners)
    await consumer.process_batch(records)
    assert database.applied == []
    assert producer.dead_lettered_offsets() == list(range(30))
    # One bounded wait for the batch: a handful of reads of the topic, not one wait per event.
    assert 1 <= partners.reads < 30


async def test_an_event_written_longer_ago_than_the_wait_costs_one_read_and_no_wait() -> None:
    # A consumer catching up, or a replay: the partner's record, had it been written, would be
    # on the topic long since.
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    partners = FakeKnownPartners({}, wait_seconds=30.0)
    records, _ = _records(("a", "rogue"))
    records[0].timestamp = int((time.time() - 60) * 1000)
    consumer = fake_consumer(handler, database=database, dead_letters=producer, partners=partners)
    await consumer.process_batch(records)
    assert partners.reads == 1  # read once to its end, then no backoff
    assert producer.dead_lettered_offsets() == [0]


async def test_a_fresh_event_waits_until_the_wait_after_it_was_written() -> None:
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    partners = FakeKnownPartners({}, wait_seconds=1.0)
    records, _ = _records(("a", "rogue"))
    records[0].timestamp = int(time.time() * 1000)
    consumer = fake_consumer(handler, database=database, dead_letters=producer, partners=partners)
    await consumer.process_batch(records)
    assert partners.reads > 1  # read on, with backoff, until the wait was over
    assert producer.dead_lettered_offsets() == [0]


async def test_without_a_partners_reader_nothing_is_checked() -> None:
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    records, ids = _records(("a", "nobody"))
    await fake_consumer(handler, database=database, dead_letters=producer).process_batch(records)
    assert database.applied == ids


async def test_a_known_partner_costs_no_read_of_the_topic() -> None:
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    partners = FakeKnownPartners({PARTNER: 0})
    records, ids = _records(("a", PARTNER), ("b", PARTNER))
    consumer = fake_consumer(handler, database=database, dead_letters=producer, partners=partners)
    await consumer.process_batch(records)
    assert database.applied == ids and partners.reads == 0


def test_only_ingests_events_name_a_partner_to_check() -> None:
    assert named_partner(purchase("a", partner_id="shop")) == "shop"
    assert named_partner(enrolment("a", partner_id="shop")) == "shop"
    # Points' events are checked by their source (provenance), not by a partner.
    assert named_partner(points_redeemed("a")) is None


def _record(offset: int, value: bytes | None) -> Message:
    return Message("fedelta.partners.v1", 0, offset, b"k", value)


def test_the_reader_keeps_each_provisioned_partner_and_skips_anything_else() -> None:
    reader = KnownPartners("127.0.0.1:1", client_id="test")
    provisioned = new_event(
        events.PartnerProvisioned(partner_id="shop", provisioned_at=NOW),
        source="ingest",
        subject="shop",
        time=datetime.now(UTC),
    )
    reader.learn(
        [
            _record(0, provisioned.to_bytes()),
            _record(1, None),  # a tombstone
            _record(2, b"not json"),
            _record(3, enrolment("x", at=NOW, partner_id="rogue").to_bytes()),
        ]
    )
    assert "shop" in reader
    assert "rogue" not in reader and "x" not in reader
