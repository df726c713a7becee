"""The batched consumer on fakes: isolation of poison, order per key, outages, what is skipped.
The fakes (tests/support/fakes/messaging.py) commit a transaction's changes only when it ends
without an error and undo a failed savepoint's, as PostgreSQL does; the real database is the
integration tests' business.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from aiokafka.errors import CommitFailedError, IllegalStateError
from sqlalchemy import exc as sa_exc

from shared.messaging import events
from shared.messaging.events import CloudEvent
from shared.messaging.kafka import EVENT_TYPE_HEADER
from tests.support.factories import enrolment, erasure
from tests.support.fakes.messaging import (
    NOW,
    TOPIC,
    FakeDatabase,
    FakeInboxConsumer,
    FakeKafkaConsumer,
    FakeProducer,
    Message,
    Partition,
    RecordingHandler,
    fake_consumer,
)


def consumer(
    database: FakeDatabase,
    handler: RecordingHandler,
    producer: FakeProducer,
    *,
    event_types: frozenset[str] = frozenset({events.CUSTOMER_ENROLLED}),
) -> FakeInboxConsumer:
    return fake_consumer(handler, database=database, dead_letters=producer, event_types=event_types)


def messages(*customer_ids: str) -> tuple[list[Message], list[str]]:
    """One record per customer id, in order, keyed by the customer; and the events' ids."""
    built = [enrolment(customer_id, at=NOW) for customer_id in customer_ids]
    records = [Message.of(event, offset) for offset, event in enumerate(built)]
    return records, [event.id for event in built]


async def test_a_batch_is_applied_in_one_call_and_in_order() -> None:
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    records, ids = messages("a", "b", "c", "d")
    await consumer(database, handler, producer).process_batch(records)
    assert database.applied == ids
    assert handler.calls == [ids]
    assert producer.sent == []


async def test_a_redelivered_batch_changes_nothing() -> None:
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    records, ids = messages("a", "b", "c")
    await consumer(database, handler, producer).process_batch(records)
    await consumer(database, handler, producer).process_batch(records)
    assert database.applied == ids
    assert len(handler.calls) == 1  # the second time every id was claimed: nothing to hand over


async def test_an_event_twice_in_one_poll_is_applied_once() -> None:
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    records, ids = messages("a", "b")
    await consumer(database, handler, producer).process_batch([*records, records[0]])
    assert database.applied == ids


async def test_a_poison_event_in_the_middle_goes_to_the_dlq_alone_and_the_rest_is_applied() -> None:
    database, producer = FakeDatabase(), FakeProducer()
    handler = RecordingHandler({"poison": [ValueError("bad")] * 10})
    records, ids = messages("a", "b", "c", "poison", "d", "e", "f")
    await consumer(database, handler, producer).process_batch(records)
    assert database.applied == [i for i in ids if i != ids[3]]
    assert producer.dead_lettered_offsets() == [3]
    [(topic, value, key, headers)] = producer.sent
    assert (topic, key, value) == ("fedelta.customers.v1.dlq", b"poison", records[3].value)
    assert headers["fedelta-attempts"] == b"3"
    assert headers["fedelta-error"] == b"ValueError"  # the class only: texts may quote data


async def test_events_behind_a_failing_one_of_the_same_key_wait_for_it() -> None:
    database, producer = FakeDatabase(), FakeProducer()
    # Fails in the whole batch, in the half, and alone; then passes on the retry.
    handler = RecordingHandler({"x": [ValueError("not yet")] * 3})
    records, ids = messages("a", "x", "b")
    same_key_later = Message(TOPIC, 0, 3, b"x", enrolment("x-second", at=NOW).to_bytes())
    later_id = CloudEvent.from_bytes(same_key_later.value or b"").id
    await consumer(database, handler, producer).process_batch([*records, same_key_later])
    assert producer.sent == []
    # a and b first; x once it passed; the later event of key x only after x, never before.
    assert database.applied == [ids[0], ids[2], ids[1], later_id]


async def test_a_dead_lettered_event_releases_the_events_waiting_behind_it() -> None:
    database, producer = FakeDatabase(), FakeProducer()
    handler = RecordingHandler({"x": [ValueError("never")] * 10})
    records, ids = messages("x", "a")
    behind = Message(TOPIC, 0, 2, b"x", enrolment("x-second", at=NOW).to_bytes())
    behind_id = CloudEvent.from_bytes(behind.value or b"").id
    await consumer(database, handler, producer).process_batch([*records, behind])
    assert producer.dead_lettered_offsets() == [0]
    assert database.applied == [ids[1], behind_id]


async def test_a_handler_that_recovers_within_the_attempts_dead_letters_nothing() -> None:
    database, producer = FakeDatabase(), FakeProducer()
    handler = RecordingHandler({"a": [ValueError("once"), ValueError("twice")]})
    records, ids = messages("a")
    await consumer(database, handler, producer).process_batch(records)
    assert producer.sent == []
    assert database.applied == ids


def dbapi_error(orig: Exception) -> sa_exc.DBAPIError:
    """What SQLAlchemy's asyncpg dialect raises: the generic DBAPIError around the adapted
    driver error, which carries the server's SQLSTATE."""
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

    adapted = AsyncAdapt_asyncpg_dbapi.Error(str(orig), orig)  # type: ignore[no-untyped-call]
    return sa_exc.DBAPIError("INSERT …", None, adapted)


def invalidated() -> sa_exc.DBAPIError:
    error = dbapi_error(asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"))
    error.connection_invalidated = True
    return error


OUTAGES: dict[str, Callable[[], Exception]] = {
    "too many connections": lambda: dbapi_error(
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already")
    ),
    "shutting down": lambda: dbapi_error(
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator")
    ),
    "starting up": lambda: dbapi_error(
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up")
    ),
    "killed mid-statement": invalidated,
    "read-only after failover": lambda: dbapi_error(
        asyncpg.exceptions.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only")
    ),
    "pool timeout": lambda: sa_exc.TimeoutError("QueuePool limit of size 20 reached"),
    "refused": lambda: ConnectionRefusedError(111, "Connect call failed"),
}


@pytest.mark.parametrize("outage", OUTAGES, ids=list(OUTAGES))
async def test_an_outage_at_connect_waits_and_then_applies_everything_once(outage: str) -> None:
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    database.connect_failures = [OUTAGES[outage]() for _ in range(8)]  # more than max_attempts
    records, ids = messages("a", "b")
    await consumer(database, handler, producer).process_batch(records)
    assert database.connect_failures == []
    assert database.applied == ids
    assert producer.sent == []


@pytest.mark.parametrize("outage", OUTAGES, ids=list(OUTAGES))
async def test_an_outage_inside_the_handler_waits_and_is_never_an_attempt(outage: str) -> None:
    database, producer = FakeDatabase(), FakeProducer()
    handler = RecordingHandler({"b": [OUTAGES[outage]() for _ in range(8)]})
    records, ids = messages("a", "b", "c")
    await consumer(database, handler, producer).process_batch(records)
    assert producer.sent == []
    assert database.applied == ids


async def test_an_unparseable_message_is_dead_lettered_at_once() -> None:
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    good, ids = messages("a")
    await consumer(database, handler, producer).process_batch(
        [Message(TOPIC, 1, 42, b"c1", b"{not json"), *good]
    )
    [(topic, value, key, headers)] = producer.sent
    assert (topic, value, key) == ("fedelta.customers.v1.dlq", b"{not json", b"c1")
    assert headers["fedelta-original-offset"] == b"42"
    assert headers["fedelta-attempts"] == b"1"
    assert headers["fedelta-error"] == b"ValidationError"
    assert database.applied == ids


async def test_an_envelope_whose_data_breaks_the_contract_is_dead_lettered() -> None:
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    broken = CloudEvent(
        id="x", source="s", type=events.CUSTOMER_ENROLLED, subject="c1", time=NOW, data={}
    )
    await consumer(database, handler, producer).process_batch(
        [Message(TOPIC, 0, 1, b"c1", broken.to_bytes())]
    )
    assert producer.dead_lettered_offsets() == [1]
    assert handler.calls == []


async def test_an_unknown_event_type_is_passed_over_not_dead_lettered() -> None:
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    newer = CloudEvent(
        id="n1", source="s", type="fedelta.customer.renamed.v9", subject="c1", time=NOW, data={}
    )
    await consumer(database, handler, producer).process_batch(
        [Message(TOPIC, 0, 1, b"c1", newer.to_bytes())]
    )
    assert producer.sent == []
    assert handler.calls == []
    assert database.inbox == set()


async def test_types_the_service_does_not_act_on_are_passed_over_without_an_inbox_row() -> None:
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    erased = erasure("c1", at=NOW)
    await consumer(database, handler, producer).process_batch(
        [Message(TOPIC, 0, 1, b"c1", erased.to_bytes())]
    )
    assert handler.calls == []
    assert database.inbox == set()


async def test_a_type_announced_in_the_header_is_passed_over_without_parsing_the_value() -> None:
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    unused = Message(
        TOPIC, 0, 1, b"c1", b"not even json", [(EVENT_TYPE_HEADER, events.POINTS_EARNED.encode())]
    )
    newer = Message(TOPIC, 0, 2, b"c1", b"{", [(EVENT_TYPE_HEADER, b"fedelta.thing.v9")])
    await consumer(database, handler, producer).process_batch([unused, newer])
    assert producer.sent == []  # neither value was parsed, or both would be dead-lettered
    assert handler.calls == []


async def test_a_type_the_service_uses_is_parsed_and_applied_whatever_the_header() -> None:
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    [record], ids = messages("a")
    record.headers = [(EVENT_TYPE_HEADER, events.CUSTOMER_ENROLLED.encode())]
    await consumer(database, handler, producer).process_batch([record])
    assert database.applied == ids


async def test_fields_a_newer_producer_added_are_tolerated() -> None:
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    event = enrolment("a", at=NOW)
    newer = event.model_copy(update={"data": {**event.data, "loyalty_card": "1234"}})
    await consumer(database, handler, producer).process_batch(
        [Message(TOPIC, 0, 0, b"a", newer.to_bytes())]
    )
    assert producer.sent == []
    assert database.applied == [event.id]


async def test_tombstones_are_passed_over() -> None:
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    await consumer(database, handler, producer).process_batch([Message(TOPIC, 0, 3, b"c1", None)])
    assert producer.sent == []
    assert handler.calls == []


@pytest.mark.parametrize(
    "failure", [CommitFailedError("rebalanced"), IllegalStateError("not assigned")]
)
async def test_a_commit_refused_after_a_rebalance_does_not_tear_the_consumer_down(
    failure: Exception,
) -> None:
    owner = consumer(FakeDatabase(), RecordingHandler(), FakeProducer())
    owner._uncommitted = {"p0": 11}
    kafka = FakeKafkaConsumer({"p0"}, failure=failure)
    await owner._commit(kafka)  # raises nothing
    assert owner._uncommitted == {}


async def test_only_partitions_still_owned_are_committed() -> None:
    owner = consumer(FakeDatabase(), RecordingHandler(), FakeProducer())
    owner._uncommitted = {"p0": 11, "p1": 7}
    kafka = FakeKafkaConsumer({"p1"})
    await owner._commit(kafka)
    assert kafka.committed == [{"p1": 7}]


async def test_revoking_partitions_commits_what_was_applied_for_them() -> None:
    from shared.messaging.consumer import _CommitBeforeRevoke

    owner = consumer(FakeDatabase(), RecordingHandler(), FakeProducer())
    owner._idle.set()
    owner._uncommitted = {"p0": 11, "p1": 7}
    kafka = FakeKafkaConsumer({"p0", "p1"})
    await _CommitBeforeRevoke(owner, kafka).on_partitions_revoked({"p0"})
    assert kafka.committed == [{"p0": 11}]
    assert owner._uncommitted == {"p1": 7}
    assert owner._generation == 1  # a poll read ahead before this is stale
    await _CommitBeforeRevoke(owner, kafka).on_partitions_assigned({"p1"})
    assert owner._generation == 2


class StopWhenApplied(RecordingHandler):
    """Records each batch, lets the loop run in between (as a database's answer would), and
    stops `owner` once every id of `ids` is applied."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__()
        self.ids = ids
        self.owner: FakeInboxConsumer | None = None
        self.polls_seen: list[int] = []  # how many polls the broker had seen at each batch
        self.kafka: FakeKafkaConsumer | None = None

    async def __call__(self, conn: Any, batch: Sequence[CloudEvent]) -> None:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        await super().__call__(conn, batch)
        assert self.kafka is not None and self.owner is not None
        self.polls_seen.append(self.kafka.polls)
        if set(self.ids) <= set(conn.applied):
            await self.owner.stop()


def polling(
    records: list[Message],
    ids: list[str],
    *,
    rebalance_at: int | None = None,
    revoking: bool = False,
    producer: FakeProducer | None = None,
) -> tuple[FakeInboxConsumer, FakeKafkaConsumer, StopWhenApplied, FakeDatabase]:
    """A consumer polling `records` (partition 0 of TOPIC) two at a time until `ids` are applied.
    With `rebalance_at`, a rebalance begins once that poll's records are read; `revoking` takes
    the partition away in it (the consumer is then stopped at the next poll)."""
    partition = Partition(TOPIC, 0)
    database, handler = FakeDatabase(), StopWhenApplied(ids)
    kafka = FakeKafkaConsumer({partition}, log=records)
    owner = consumer(database, handler, producer or FakeProducer())
    owner.batch_max_records = 2
    handler.owner, handler.kafka = owner, kafka

    def rebalance(number: int) -> None:
        if number == rebalance_at:
            owner.assignment_changing()
            if revoking:
                kafka.assigned.discard(partition)
        elif revoking and rebalance_at is not None and number > rebalance_at:
            asyncio.get_running_loop().call_soon(owner._stopping.set)

    kafka.on_poll = rebalance
    return owner, kafka, handler, database


async def test_the_next_poll_is_read_while_a_batch_is_applied_and_each_is_committed_after() -> None:
    records, ids = messages("a", "b", "c", "d", "e")
    owner, kafka, handler, database = polling(records, ids)
    await asyncio.wait_for(owner.consume(kafka), timeout=5)
    assert database.applied == ids
    assert handler.calls == [ids[0:2], ids[2:4], ids[4:]]
    # While the first batch was applied, the second poll had been read already.
    assert handler.polls_seen[0] >= 2
    partition = Partition(TOPIC, 0)
    assert kafka.committed == [{partition: 2}, {partition: 4}, {partition: 5}]
    assert kafka.seeks == []


async def test_a_poll_read_across_a_rebalance_is_read_again_not_applied_from_before() -> None:
    records, ids = messages("a", "b", "c", "d")
    owner, kafka, handler, database = polling(records, ids, rebalance_at=2)
    await asyncio.wait_for(owner.consume(kafka), timeout=5)
    assert database.applied == ids
    assert handler.calls == [ids[0:2], ids[2:4]]  # c and d once, after the rebalance
    assert kafka.seeks == [(Partition(TOPIC, 0), 2)]


async def test_a_poison_record_of_a_poll_dropped_at_a_rebalance_is_dead_lettered_once() -> None:
    records, ids = messages("a", "b", "c")
    poison = Message(TOPIC, 0, 2, b"x", b"{not json")
    records = [*records[:2], poison, replace(records[2], offset=3)]
    dead_letters = FakeProducer()
    owner, kafka, _, database = polling(records, ids, rebalance_at=2, producer=dead_letters)
    await asyncio.wait_for(owner.consume(kafka), timeout=5)
    assert database.applied == ids
    assert dead_letters.dead_lettered_offsets() == [2]


async def test_a_partition_gone_in_a_rebalance_is_left_to_its_new_owner() -> None:
    records, ids = messages("a", "b", "c", "d")
    owner, kafka, _, database = polling(records, ids, rebalance_at=2, revoking=True)
    await asyncio.wait_for(owner.consume(kafka), timeout=5)
    assert database.applied == ids[:2]  # c and d are the new owner's
    assert kafka.seeks == []


async def test_a_dead_lettered_copy_keeps_the_headers_that_say_how_to_read_it() -> None:
    database, handler, producer = FakeDatabase(), RecordingHandler(), FakeProducer()
    broken = CloudEvent(
        id="x", source="s", type=events.CUSTOMER_ENROLLED, subject="c1", time=NOW, data={}
    )
    binding = [
        ("content-type", events.CLOUDEVENTS_JSON.encode()),
        (EVENT_TYPE_HEADER, events.CUSTOMER_ENROLLED.encode()),
        ("x-unrelated", b"dropped"),
    ]
    await consumer(database, handler, producer).process_batch(
        [Message(TOPIC, 0, 1, b"c1", broken.to_bytes(), binding)]
    )
    [(_, _, _, headers)] = producer.sent
    assert headers["content-type"] == b"application/cloudevents+json; charset=UTF-8"
    assert headers[EVENT_TYPE_HEADER] == events.CUSTOMER_ENROLLED.encode()
    assert headers["fedelta-error"] == b"ValidationError"
    assert "x-unrelated" not in headers
