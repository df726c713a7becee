"""The consumer loop: one poll's records applied in one transaction, offsets committed after.

Each poll returns a bounded batch. Its events are claimed in the inbox with one statement and
the new ones handed to the service's batch handler, in partition order, to apply with
set-based SQL in the same transaction; the Kafka offsets are committed after it. A
redelivered event finds its id claimed and changes nothing. While a batch is applied, the next
poll is read and parsed (its CPU work in the waits for the database); it has no side effect
until it is applied in turn, and a rebalance begun meanwhile drops it and rewinds its partitions.

An event that fails on a healthy database is isolated: the batch is split (savepoints) until
the failing events stand alone, the rest is applied, and only the failing ones are retried,
then dead-lettered to `<topic>.dlq` with their error. Later events of the same key (customer)
wait behind a failing one, so one customer's events are applied in order, within and across
batches. While the database is away (see `shared.storage.failures`) nothing counts as an attempt:
the consumer waits and applies the batch when it is back.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import Clock
from shared.messaging import inbox, provenance, tracing
from shared.messaging.events import EVENT_KINDS, CloudEvent
from shared.messaging.kafka import (
    CONTENT_TYPE_HEADER,
    EVENT_TYPE_HEADER,
    KafkaConnection,
    Producer,
    client_options,
)
from shared.messaging.partners import KnownPartners, UnknownPartner, named_partner
from shared.messaging.topics import dead_letter_topic
from shared.observability.metrics import (
    CONSUMER_BATCH_EVENTS,
    CONSUMER_BATCH_SECONDS,
    CONSUMER_DATABASE_WAITS,
    CONSUMER_HANDLER_SECONDS,
    CONSUMER_LAG,
    DEAD_LETTERS,
    EVENTS_CONSUMED,
    EVENTS_REFUSED,
)
from shared.storage.failures import is_outage

log = logging.getLogger(__name__)

BatchHandler = Callable[[AsyncConnection, Sequence[CloudEvent]], Awaitable[None]]


def _written_at(
    parsed: Sequence[Received], named: dict[str, str | None], partners: set[str]
) -> float | None:
    """When the newest record naming one of `partners` was written (its Kafka timestamp, in
    seconds since the epoch), if the records say."""
    stamps = [
        r.message.timestamp / 1000
        for r in parsed
        if named[r.event.id] in partners and getattr(r.message, "timestamp", None) is not None
    ]
    return max(stamps, default=None)


# (topic, event type, outcome) -> messages: counted per batch, added up once.
Tally = collections.Counter[tuple[str, str, str]]
# How often an idle consumer refreshes its lag gauges (a busy one does at every poll).
LAG_REFRESH_SECONDS = 5.0
# Records parsed before the loop may run something else: the batch read ahead is parsed
# while the one before it waits for its statements, in slices of about a millisecond.
PARSE_SLICE = 50


@dataclass(frozen=True)
class Subscription:
    """What a service consumes: the topics, the event types it acts on (other types on those
    topics are passed over without an inbox row), and the batch handler that applies them."""

    topics: tuple[str, ...]
    event_types: frozenset[str]
    handle: BatchHandler


@dataclass(frozen=True)
class Received:
    """One record of a poll with its parsed event; `position` keeps the poll's order."""

    position: int
    message: Any
    event: CloudEvent

    @property
    def key(self) -> bytes | None:
        key: bytes | None = self.message.key
        return key


@dataclass(frozen=True)
class _Poll:
    """One poll's records by partition, parsed, and the assignment generation it was read in."""

    records: dict[Any, list[Any]]
    parsed: _Parsed
    generation: int


@dataclass
class _Parsed:
    """A poll's records as read: the events to apply, the records invalid or refused (each
    dead-lettered with its error when the poll is applied; a refusal is counted as one) and the
    count of those passed over."""

    received: list[Received] = field(default_factory=list)
    invalid: list[tuple[Any, Exception]] = field(default_factory=list)
    refused: list[tuple[Any, Exception]] = field(default_factory=list)  # valid, not allowed
    tally: Tally = field(default_factory=collections.Counter)


@dataclass
class Outcome:
    """What one transaction did with a batch."""

    applied: list[Received] = field(default_factory=list)
    duplicates: list[Received] = field(default_factory=list)
    failed: list[tuple[Received, Exception]] = field(default_factory=list)
    # Not tried: an earlier event of the same key failed, and order comes first.
    deferred: list[Received] = field(default_factory=list)


@dataclass
class EventConsumer:
    service: str
    subscription: Subscription
    bootstrap_servers: str | KafkaConnection
    engine: AsyncEngine
    inbox_table: sa.Table
    dead_letters: Producer
    clock: Clock
    max_attempts: int = 5
    retry_backoff: float = 0.2
    outage_backoff_max: float = 5.0
    batch_max_records: int = 1000
    poll_timeout_ms: int = 200
    max_poll_interval_ms: int = 300_000
    rebalance_wait_seconds: float = 10.0
    after_commit: Callable[[], None] | None = None
    # The provisioned partners, for a consumer of events that name one (None: not checked).
    partners: KnownPartners | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _idle: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _uncommitted: dict[Any, int] = field(default_factory=dict, init=False)
    _lag_refreshed_at: float = field(default=0.0, init=False)
    # Counts the rebalances begun: a poll read under an older count is not applied.
    _generation: int = field(default=0, init=False)

    @property
    def name(self) -> str:
        return f"{self.service}-consumer"

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            **client_options(self.bootstrap_servers),
            group_id=f"fedelta-{self.service}",
            client_id=f"fedelta-{self.service}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.batch_max_records,
            max_poll_interval_ms=self.max_poll_interval_ms,
        )
        self._idle.set()
        if self.partners is not None:
            await self.partners.start()
        try:
            await consumer.start()
        except BaseException:
            await self._stop_partners()
            raise
        try:
            consumer.subscribe(
                topics=list(self.subscription.topics), listener=_CommitBeforeRevoke(self, consumer)
            )
            await self.consume(consumer)
        finally:
            await consumer.stop()
            await self._stop_partners()

    async def consume(self, consumer: Any) -> None:
        """Polls and applies until stopped. The next poll is read and parsed while this one's
        transaction runs, so that its CPU work fills the waits for the database; a poll read
        across a rebalance is dropped and its partitions rewound (`_rewind`)."""
        ahead: asyncio.Task[_Poll] | None = None
        try:
            while not self._stopping.is_set():
                poll = await (ahead or self._poll(consumer))
                ahead = None
                if not poll.records:
                    await self._refresh_idle_lag(consumer)
                    continue
                if poll.generation != self._generation:
                    self._rewind(consumer, poll)
                    continue
                self._idle.clear()
                ahead = asyncio.create_task(self._poll(consumer))
                await self._apply_poll(consumer, poll)
        finally:
            if ahead is not None:
                ahead.cancel()
                await asyncio.gather(ahead, return_exceptions=True)

    async def _poll(self, consumer: Any) -> _Poll:
        generation = self._generation
        polled = await consumer.getmany(
            timeout_ms=self.poll_timeout_ms, max_records=self.batch_max_records
        )
        messages = [m for records in polled.values() for m in records]
        return _Poll(polled, await self._parse(messages), generation)

    async def _apply_poll(self, consumer: Any, poll: _Poll) -> None:
        started = time.perf_counter()
        try:
            await self._apply_parsed(poll.parsed)
            for partition, records in poll.records.items():
                self._uncommitted[partition] = records[-1].offset + 1
            await self._commit(consumer)
        finally:
            self._idle.set()
        CONSUMER_BATCH_SECONDS.labels(self.service).observe(time.perf_counter() - started)
        CONSUMER_BATCH_EVENTS.labels(self.service).observe(
            sum(len(records) for records in poll.records.values())
        )
        self._note_lag(consumer, poll.records)

    def _rewind(self, consumer: Any, poll: _Poll) -> None:
        """A poll read while the assignment changed is not applied: each of its partitions still
        assigned is read again from its first record (whatever the rebalance reset it to), one
        gone is its new owner's, who starts from the offsets committed before it went."""
        assigned = consumer.assignment()
        for partition, records in poll.records.items():
            if partition in assigned:
                consumer.seek(partition, records[0].offset)

    def assignment_changing(self) -> None:
        """Called by the rebalance listener, first thing: a poll read before this is stale."""
        self._generation += 1

    async def stop(self) -> None:
        self._stopping.set()

    async def _stop_partners(self) -> None:
        if self.partners is not None:
            await self.partners.stop()

    def _note_lag(self, consumer: Any, polled: dict[Any, list[Any]]) -> None:
        """Per partition of the poll: the highwater the fetch reported minus the next offset."""
        for partition, records in polled.items():
            highwater = consumer.highwater(partition)
            if highwater is not None:
                self._set_lag(partition, highwater - (records[-1].offset + 1))

    async def _refresh_idle_lag(self, consumer: Any) -> None:
        now = time.monotonic()
        if now < self._lag_refreshed_at + LAG_REFRESH_SECONDS:
            return
        self._lag_refreshed_at = now
        for partition in consumer.assignment():
            highwater = consumer.highwater(partition)
            if highwater is None:
                continue
            try:
                position = await consumer.position(partition)
            except IllegalStateError:  # revoked meanwhile
                continue
            self._set_lag(partition, highwater - position)

    def _set_lag(self, partition: Any, lag: int) -> None:
        CONSUMER_LAG.labels(self.service, partition.topic, str(partition.partition)).set(
            max(0, lag)
        )

    def forget_lag(self, partitions: Any) -> None:
        """A partition gone to another member is no longer this consumer's lag to report."""
        for partition in partitions:
            with contextlib.suppress(KeyError, AttributeError):
                CONSUMER_LAG.remove(self.service, partition.topic, str(partition.partition))

    async def _commit(self, consumer: Any, only: set[Any] | None = None) -> None:
        """Commits the applied offsets (of `only` these partitions). A partition this consumer
        no longer owns after a rebalance cannot be committed; its new owner redelivers the
        records, which the inbox absorbs, so that is logged and the consumer goes on."""
        offsets = {
            tp: offset
            for tp, offset in self._uncommitted.items()
            if (only is None or tp in only) and tp in consumer.assignment()
        }
        for tp in list(self._uncommitted):
            if only is None or tp in only:
                del self._uncommitted[tp]
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as error:
            log.info(
                "%s: offsets not committed after a rebalance (%s); the new owner's inbox "
                "absorbs the redelivery",
                self.name,
                type(error).__name__,
            )

    # -- one batch -----------------------------------------------------------------------

    async def process_batch(self, messages: Sequence[Any]) -> None:
        """Applies one poll's records; returns when every one is applied, passed over or
        dead-lettered, so their offsets may be committed."""
        await self._apply_parsed(await self._parse(messages))

    async def _apply_parsed(self, parsed: _Parsed) -> None:
        """Counts what the parse passed over, dead-letters what it refused and the events of
        unknown partners, and applies the rest."""
        self._add_up(parsed.tally)
        for message, error in parsed.invalid:
            await self._dead_letter(message, error, attempts=1)
        for message, reason in parsed.refused:
            await self._refuse(message, reason)
        await self._apply_received(await self._refuse_unknown_partners(parsed.received))

    async def _apply_received(self, pending: list[Received]) -> None:
        attempts: dict[str, int] = {}
        while pending:
            outcome = await self._apply_waiting_out_outages(pending)
            self._count(outcome)
            retry: list[Received] = []
            for received, error in outcome.failed:
                attempt = attempts[received.event.id] = attempts.get(received.event.id, 0) + 1
                if attempt >= self.max_attempts:
                    await self._dead_letter(received.message, error, attempts=attempt)
                else:
                    log.warning(
                        "%s: event %s failed (attempt %d of %d): %s",
                        self.name,
                        received.event.id,
                        attempt,
                        self.max_attempts,
                        type(error).__name__,
                    )
                    retry.append(received)
            if retry:
                worst = max(attempts[r.event.id] for r in retry)
                await asyncio.sleep(self.retry_backoff * 2 ** (worst - 1))
            pending = sorted(retry + outcome.deferred, key=lambda r: r.position)

    async def _refuse_unknown_partners(self, parsed: list[Received]) -> list[Received]:
        """Dead-letters the events naming a partner that is still unknown once the partners
        topic has been read on (shared.messaging.partners: one bounded wait per batch)."""
        if self.partners is None:
            return parsed
        named = {r.event.id: named_partner(r.event) for r in parsed}
        asked = {p for p in named.values() if p is not None and p not in self.partners}
        if not asked:
            return parsed
        unknown = await self.partners.unknown(asked, _written_at(parsed, named, asked))
        kept: list[Received] = []
        for received in parsed:
            partner = named[received.event.id]
            if partner is None or partner not in unknown:
                kept.append(received)
                continue
            refusal = UnknownPartner(f"{received.event.type} names an unknown partner")
            await self._refuse(received.message, refusal)
        return kept

    async def _refuse(self, message: Any, reason: Exception) -> None:
        """A valid event this consumer may not apply (its source, its partner): dead-lettered
        with the reason as its error, and counted as refused."""
        EVENTS_REFUSED.labels(self.service, message.topic, type(reason).__name__).inc()
        await self._dead_letter(message, reason, attempts=1)

    async def _parse(self, messages: Sequence[Any]) -> _Parsed:
        """Reads a poll's records without a side effect (a poll read ahead may be dropped):
        what to apply, what to dead-letter, what was passed over."""
        parsed = _Parsed()
        tally = parsed.tally
        seen: set[str] = set()
        for position, message in enumerate(messages):
            if position % PARSE_SLICE == PARSE_SLICE - 1:
                # Lets the batch being applied take its database's answers in between.
                await asyncio.sleep(0)
            if message.value is None:
                tally[message.topic, "tombstone", "skipped"] += 1
                continue
            announced = _header(message, EVENT_TYPE_HEADER)
            if announced is not None and announced not in self.subscription.event_types:
                # Passed over unparsed: most of what a service reads is of no use to it.
                tally[message.topic, _known(announced), "skipped"] += 1
                continue
            try:
                event = CloudEvent.from_bytes(message.value)
            except (ValidationError, ValueError) as error:
                parsed.invalid.append((message, error))
                continue
            if event.type not in EVENT_KINDS:
                # Written by a newer producer: passed over and counted, not dead-lettered, so
                # a rolling upgrade loses nothing this version could have used.
                tally[message.topic, "unknown", "skipped"] += 1
                continue
            if event.type not in self.subscription.event_types:
                tally[message.topic, event.type, "skipped"] += 1
                continue
            try:
                event.payload()
            except ValidationError as error:
                parsed.invalid.append((message, error))
                continue
            if (refused := provenance.refusal(event, message.topic)) is not None:
                parsed.refused.append((message, refused))
                continue
            if event.id in seen:  # the same event twice in one poll: the first one counts
                tally[message.topic, event.type, "duplicate"] += 1
                continue
            seen.add(event.id)
            parsed.received.append(Received(position, message, event))
        return parsed

    async def _apply_waiting_out_outages(self, batch: list[Received]) -> Outcome:
        delay = self.retry_backoff
        while True:
            try:
                return await self._apply_batch(batch)
            except Exception as error:
                if not is_outage(error):
                    raise
                log.warning(
                    "%s: database unavailable, waiting %.1fs (%s)",
                    self.name,
                    delay,
                    type(error).__name__,
                )
                CONSUMER_DATABASE_WAITS.labels(self.service, batch[0].message.topic).inc()
                await asyncio.sleep(delay)
                delay = min(self.outage_backoff_max, delay * 2)

    async def _apply_batch(self, batch: list[Received]) -> Outcome:
        """One transaction: the whole batch at once, or, when an event in it fails, the
        batch split until the failing events stand alone and everything else is applied.
        An outage raises, undoing the transaction."""
        outcome = Outcome()
        try:
            async with self.engine.begin() as conn:
                try:
                    async with conn.begin_nested():
                        await self._claim_and_handle(conn, batch, outcome)
                except Exception as error:
                    if is_outage(error):
                        raise
                    outcome = Outcome()
                    await self._split(conn, batch, error, outcome, blocked=set())
        except Exception as error:
            if is_outage(error) or len(batch) == 1:
                raise
            # Failed outside any savepoint (e.g. at commit): one transaction per event.
            return await self._apply_one_by_one(batch)
        if outcome.applied and self.after_commit is not None:
            self.after_commit()
        return outcome

    async def _isolate(
        self,
        conn: AsyncConnection,
        batch: list[Received],
        outcome: Outcome,
        blocked: set[bytes | None],
    ) -> None:
        runnable = [r for r in batch if r.key not in blocked]
        outcome.deferred.extend(r for r in batch if r.key in blocked)
        if not runnable:
            return
        try:
            async with conn.begin_nested():
                tried = Outcome()
                await self._claim_and_handle(conn, runnable, tried)
            outcome.applied.extend(tried.applied)
            outcome.duplicates.extend(tried.duplicates)
        except Exception as error:
            if is_outage(error):
                raise
            await self._split(conn, runnable, error, outcome, blocked)

    async def _split(
        self,
        conn: AsyncConnection,
        failing: list[Received],
        error: Exception,
        outcome: Outcome,
        blocked: set[bytes | None],
    ) -> None:
        """`failing` failed as a whole with `error`: one event is the culprit; more are
        halved and each half tried on its own."""
        if len(failing) == 1:
            outcome.failed.append((failing[0], error))
            blocked.add(failing[0].key)
            return
        middle = len(failing) // 2
        await self._isolate(conn, failing[:middle], outcome, blocked)
        await self._isolate(conn, failing[middle:], outcome, blocked)

    async def _apply_one_by_one(self, batch: list[Received]) -> Outcome:
        outcome = Outcome()
        blocked: set[bytes | None] = set()
        for received in batch:
            if received.key in blocked:
                outcome.deferred.append(received)
                continue
            try:
                single = await self._apply_batch([received])
            except Exception as error:
                if is_outage(error):
                    raise
                outcome.failed.append((received, error))
                blocked.add(received.key)
                continue
            outcome.applied.extend(single.applied)
            outcome.duplicates.extend(single.duplicates)
            outcome.failed.extend(single.failed)
            blocked.update(r.key for r, _ in single.failed)
        return outcome

    async def _claim_and_handle(
        self, conn: AsyncConnection, batch: Sequence[Received], outcome: Outcome
    ) -> None:
        claimed = await self._claim(conn, batch)
        new = [r for r in batch if r.event.id in claimed]
        outcome.duplicates.extend(r for r in batch if r.event.id not in claimed)
        if new:
            started = time.perf_counter()
            events = [r.event for r in new]
            with tracing.applying(self.service, {r.event.id: r.message.topic for r in new}, events):
                await self.subscription.handle(conn, events)
            CONSUMER_HANDLER_SECONDS.labels(self.service).observe(time.perf_counter() - started)
        outcome.applied.extend(new)

    async def _claim(self, conn: AsyncConnection, batch: Sequence[Received]) -> set[str]:
        return await inbox.claim_many(
            conn, self.inbox_table, [(r.event.id, r.event.type) for r in batch], self.clock.now()
        )

    def _count(self, outcome: Outcome) -> None:
        tally: Tally = collections.Counter()
        for received in outcome.applied:
            tally[received.message.topic, received.event.type, "applied"] += 1
        for received in outcome.duplicates:
            tally[received.message.topic, received.event.type, "duplicate"] += 1
        self._add_up(tally)

    def _add_up(self, tally: Tally) -> None:
        """One counter update per (topic, type, outcome) and batch, not one per message."""
        for (topic, event_type, outcome), count in tally.items():
            EVENTS_CONSUMED.labels(self.service, topic, event_type, outcome).inc(count)

    async def _dead_letter(self, message: Any, error: BaseException, *, attempts: int) -> None:
        # The error class only: an exception's text may quote SQL parameters or the body.
        headers = [
            ("fedelta-error", type(error).__name__.encode()),
            ("fedelta-consumer", self.service.encode()),
            ("fedelta-original-topic", message.topic.encode()),
            ("fedelta-original-partition", str(message.partition).encode()),
            ("fedelta-original-offset", str(message.offset).encode()),
            ("fedelta-attempts", str(attempts).encode()),
        ]
        # The copy is the original record: it keeps the headers that say how to read it.
        headers += [
            (name, bytes(value))
            for name, value in getattr(message, "headers", None) or ()
            if name in (CONTENT_TYPE_HEADER, EVENT_TYPE_HEADER)
        ]
        delay = 0.5
        while True:
            try:
                await self.dead_letters.send_and_wait(
                    dead_letter_topic(message.topic),
                    value=message.value,
                    key=message.key,
                    headers=headers,
                )
                break
            except Exception as publish_error:
                # Never drop it: without the dead-letter copy the offset must not move on.
                log.warning(
                    "%s: dead-letter publish failed (%s), retrying",
                    self.name,
                    type(publish_error).__name__,
                )
                await asyncio.sleep(delay)
                delay = min(self.outage_backoff_max, delay * 2)
        log.error(
            "%s: dead-lettered %s[%s]@%s after %d attempt(s): %s",
            self.name,
            message.topic,
            message.partition,
            message.offset,
            attempts,
            type(error).__name__,
        )
        event_type = _known(_header(message, EVENT_TYPE_HEADER))
        EVENTS_CONSUMED.labels(self.service, message.topic, event_type, "dead_lettered").inc()
        DEAD_LETTERS.labels(self.service, message.topic, type(error).__name__).inc()


def _known(event_type: str | None) -> str:
    """An event type as a metric label: one the contract knows, else `unknown` (a header is
    an outside value; it must not make new series)."""
    return event_type if event_type in EVENT_KINDS else "unknown"


def _header(message: Any, name: str) -> str | None:
    for key, value in getattr(message, "headers", None) or ():
        if key == name:
            return bytes(value).decode(errors="replace")
    return None


class _CommitBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before partitions go to another member: let the batch in flight finish (for a
    bounded time) and commit what was applied, so the new owner starts where we stopped."""

    def __init__(self, owner: EventConsumer, consumer: Any) -> None:
        self._owner = owner
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self._owner.assignment_changing()
        try:
            async with asyncio.timeout(self._owner.rebalance_wait_seconds):
                await self._owner._idle.wait()
        except TimeoutError:
            log.warning("%s: batch still in flight at rebalance", self._owner.name)
        await self._owner._commit(self._consumer, only=set(revoked))
        self._owner.forget_lag(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._owner.assignment_changing()
