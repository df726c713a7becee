"""The consumer's error paths on fakes: poison messages go to the dead-letter topic."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from shared import events
from shared.clock import FixedClock
from shared.consumer import EventConsumer
from shared.events import CloudEvent, new_event

NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, dict[str, bytes]]] = []

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        self.sent.append((topic, value, key, dict(headers or [])))


class ScriptedConsumer(EventConsumer):
    """Applies events through a scripted outcome instead of a database transaction."""

    outcomes: list[Exception | bool]

    async def _apply(self, event: CloudEvent) -> bool:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


async def never_called(conn: Any, event: CloudEvent) -> None:
    raise AssertionError("the handler should not be reached")


def consumer(producer: FakeProducer, outcomes: Sequence[Exception | bool]) -> ScriptedConsumer:
    built = ScriptedConsumer(
        service="points",
        topics=["fedelta.purchases.v1"],
        bootstrap_servers="127.0.0.1:1",
        engine=None,  # type: ignore[arg-type]  # never touched: _apply is scripted
        inbox_table=sa.Table("inbox", sa.MetaData()),
        handle=never_called,
        dead_letters=producer,
        clock=FixedClock(NOW),
        max_attempts=3,
        retry_backoff=0.001,
    )
    built.outcomes = list(outcomes)
    return built


def good_message(offset: int = 7) -> Message:
    event = new_event(
        events.CustomerErased(customer_id="c1"), source="ingest/demo", subject="c1", time=NOW
    )
    return Message("fedelta.purchases.v1", 2, offset, b"c1", event.to_bytes())


async def test_unparseable_message_is_dead_lettered_at_once_with_its_error() -> None:
    producer = FakeProducer()
    await consumer(producer, []).process(
        Message("fedelta.purchases.v1", 1, 42, b"c1", b"{not json")
    )
    [(topic, value, key, headers)] = producer.sent
    assert topic == "fedelta.purchases.v1.dlq"
    assert (value, key) == (b"{not json", b"c1")
    assert headers["fedelta-original-offset"] == b"42"
    assert headers["fedelta-attempts"] == b"1"
    assert b"ValidationError" in headers["fedelta-error"]


async def test_an_envelope_whose_data_breaks_the_contract_is_dead_lettered() -> None:
    producer = FakeProducer()
    broken = CloudEvent(
        id="x",
        source="s",
        type=events.PURCHASE_COMPLETED,
        subject="c1",
        time=NOW,
        data={"purchase_id": "p1"},
    )
    await consumer(producer, []).process(
        Message("fedelta.purchases.v1", 0, 1, b"c1", broken.to_bytes())
    )
    assert [sent[0] for sent in producer.sent] == ["fedelta.purchases.v1.dlq"]


async def test_a_failing_handler_is_retried_then_dead_lettered() -> None:
    producer = FakeProducer()
    failing = consumer(producer, [ValueError("boom")] * 3)
    await failing.process(good_message())
    [(_, _, _, headers)] = producer.sent
    assert headers["fedelta-attempts"] == b"3"
    assert headers["fedelta-error"] == b"ValueError: boom"
    assert failing.outcomes == []


async def test_a_handler_that_recovers_within_the_attempts_is_not_dead_lettered() -> None:
    producer = FakeProducer()
    flaky = consumer(producer, [ValueError("once"), True])
    await flaky.process(good_message())
    assert producer.sent == []
    assert flaky.outcomes == []


async def test_database_outages_do_not_count_as_attempts() -> None:
    producer = FakeProducer()
    waiting = consumer(producer, [ConnectionRefusedError()] * 5 + [True])
    waiting.retry_backoff = 0.0001
    await waiting.process(good_message())
    assert producer.sent == []
    assert waiting.outcomes == []


async def test_tombstones_are_passed_over() -> None:
    producer = FakeProducer()
    await consumer(producer, []).process(Message("fedelta.customers.v1", 0, 3, b"c1", None))
    assert producer.sent == []
