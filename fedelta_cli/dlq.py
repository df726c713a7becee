"""Dead letters: what the consumers gave up on (`<topic>.dlq`, see
shared/messaging/consumer.py), why, and replaying them to their topic once the cause is fixed.

A dead letter is the original record (same key and value) with headers saying why:
`fedelta-error` (the exception class, never its text), `fedelta-consumer` (the service),
`fedelta-original-topic|partition|offset` and `fedelta-attempts`.

Replay re-publishes the record to its original topic with its key, value and its own headers
(the dead-letter ones removed, `fedelta-replayed-from: <dlq>:<partition>:<offset>` added). Every
consumer group reading that topic sees it again; the inboxes make sure each service applies
an event id at most once, so a service that had applied it changes nothing, and the one that
failed applies it now (or dead-letters it again, if the cause is not fixed).

What was replayed is tracked by the consumer group `fedelta-dlq-replay` on the `.dlq` topics:
replay starts where the previous replay stopped and commits past what it sent, so running it
twice sends nothing the second time. `--since` leaves older dead letters out and passes them
for good; to send them again on purpose, reset that group's offsets (kafka-consumer-groups.sh
--reset-offsets).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.messaging.kafka import KafkaConnection, client_options
from shared.messaging.topics import (
    CUSTOMERS,
    NOTIFICATIONS,
    POINTS,
    PURCHASES,
    TIERS,
    dead_letter_topic,
)

REPLAY_GROUP = "fedelta-dlq-replay"
REPLAYED_FROM_HEADER = "fedelta-replayed-from"
DEAD_LETTER_HEADERS = frozenset(
    {
        "fedelta-error",
        "fedelta-consumer",
        "fedelta-original-topic",
        "fedelta-original-partition",
        "fedelta-original-offset",
        "fedelta-attempts",
    }
)
MAIN_TOPICS = (CUSTOMERS, PURCHASES, POINTS, TIERS, NOTIFICATIONS)
_SHORT_NAMES = {topic.split(".")[1]: topic for topic in MAIN_TOPICS}
_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def dead_letter_topics(topic: str | None) -> list[str]:
    """The `.dlq` topics meant by --topic: none (all), a short name (`purchases`), a topic
    (`fedelta.purchases.v1`) or a dead-letter topic itself."""
    if topic is None:
        return [dead_letter_topic(t) for t in MAIN_TOPICS]
    if topic.endswith(".dlq"):
        return [topic]
    return [dead_letter_topic(_SHORT_NAMES.get(topic, topic))]


def parse_since(value: str | None, now: datetime) -> datetime | None:
    """`2h`, `30m`, `7d`, `90s` ago, or an ISO 8601 instant (UTC when it has no offset)."""
    if value is None:
        return None
    relative = _RELATIVE.fullmatch(value.strip())
    if relative:
        amount, unit = relative.groups()
        return now - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        instant = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"--since {value!r}: give a duration (30m, 2h, 7d) or an ISO 8601 time"
        ) from None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


@dataclass(frozen=True)
class DeadLetter:
    topic: str  # the .dlq topic
    partition: int
    offset: int
    dead_lettered_at: datetime
    key: str | None
    headers: dict[str, str]
    value: bytes | None
    replayed: bool

    @property
    def ref(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @property
    def original_topic(self) -> str:
        return self.headers.get("fedelta-original-topic") or self.topic.removesuffix(".dlq")

    @property
    def error(self) -> str:
        return self.headers.get("fedelta-error", "?")

    def event_summary(self) -> dict[str, str]:
        """The event's id and type: ids only, never the body's data."""
        try:
            document = json.loads(self.value or b"")
        except ValueError:
            return {"event": "not JSON"}
        if not isinstance(document, dict):
            return {"event": "not a CloudEvent"}
        return {
            name: str(document[name])
            for name in ("id", "type", "subject", "time")
            if name in document
        }


def parse_ref(ref: str) -> tuple[str, int, int]:
    """`<dlq topic>:<partition>:<offset>`, as `fedelta dlq list` prints it."""
    try:
        topic, partition, offset = ref.rsplit(":", 2)
        return topic, int(partition), int(offset)
    except ValueError:
        raise ValueError(f"{ref!r}: expected <dlq topic>:<partition>:<offset>") from None


def _headers(record: Any) -> dict[str, str]:
    return {key: bytes(value).decode(errors="replace") for key, value in (record.headers or ())}


def _dead_letter(record: Any, replayed_below: dict[TopicPartition, int]) -> DeadLetter:
    tp = TopicPartition(record.topic, record.partition)
    return DeadLetter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        dead_lettered_at=datetime.fromtimestamp(record.timestamp / 1000, tz=UTC),
        key=record.key.decode(errors="replace") if record.key is not None else None,
        headers=_headers(record),
        value=record.value,
        replayed=record.offset < replayed_below.get(tp, 0),
    )


async def _partitions(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    found: list[TopicPartition] = []
    for topic in topics:
        numbers = consumer.partitions_for_topic(topic)
        if not numbers:
            await consumer._client.force_metadata_update()
            numbers = consumer.partitions_for_topic(topic)
        found.extend(TopicPartition(topic, p) for p in sorted(numbers or ()))
    return found


async def _read_to_end(
    consumer: AIOKafkaConsumer, starts: dict[TopicPartition, int | None]
) -> list[Any]:
    """Every record from each partition's start (None: its beginning) to its end now."""
    partitions = list(starts)
    if not partitions:
        return []
    consumer.assign(partitions)
    ends = await consumer.end_offsets(partitions)
    beginnings = await consumer.beginning_offsets(partitions)
    wanted: dict[TopicPartition, int] = {}
    for tp in partitions:
        start = starts[tp]
        start = beginnings[tp] if start is None else max(start, beginnings[tp])
        if start < ends[tp]:
            consumer.seek(tp, start)
            wanted[tp] = ends[tp]
    records: list[Any] = []
    remaining = dict(wanted)
    consumer.pause(*[tp for tp in partitions if tp not in wanted])
    while remaining:
        batches = await consumer.getmany(*remaining, timeout_ms=1000)
        for tp, batch in batches.items():
            records.extend(r for r in batch if r.offset < wanted[tp])
        for tp in list(remaining):
            if await consumer.position(tp) >= remaining[tp]:
                del remaining[tp]
    return records


async def _replayed_below(
    consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]
) -> dict[TopicPartition, int]:
    committed: dict[TopicPartition, int] = {}
    for tp in partitions:
        offset = await consumer.committed(tp)
        if offset is not None and offset >= 0:
            committed[tp] = offset
    return committed


def _replay_consumer(bootstrap_servers: str | KafkaConnection) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **client_options(bootstrap_servers),
        group_id=REPLAY_GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


async def list_dead_letters(
    bootstrap_servers: str | KafkaConnection, topics: Sequence[str], since: datetime | None = None
) -> list[DeadLetter]:
    consumer = _replay_consumer(bootstrap_servers)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topics)
        replayed = await _replayed_below(consumer, partitions)
        records = await _read_to_end(consumer, dict.fromkeys(partitions))
    finally:
        await consumer.stop()
    letters = [_dead_letter(r, replayed) for r in records if r.value is not None]
    if since is not None:
        letters = [d for d in letters if d.dead_lettered_at >= since]
    return sorted(letters, key=lambda d: (d.dead_lettered_at, d.topic, d.partition, d.offset))


async def find_dead_letter(bootstrap_servers: str | KafkaConnection, ref: str) -> DeadLetter | None:
    topic, partition, offset = parse_ref(ref)
    tp = TopicPartition(topic, partition)
    consumer = _replay_consumer(bootstrap_servers)
    await consumer.start()
    try:
        if tp not in await _partitions(consumer, [topic]):
            return None
        replayed = await _replayed_below(consumer, [tp])
        consumer.assign([tp])
        ends = await consumer.end_offsets([tp])
        if offset >= ends[tp]:
            return None
        records = await _read_to_end(consumer, {tp: offset})
    finally:
        await consumer.stop()
    for record in records:
        if record.offset == offset and record.value is not None:
            return _dead_letter(record, replayed)
    return None


@dataclass(frozen=True)
class ReplayReport:
    replayed: list[DeadLetter]
    passed_over: int  # older than --since (now passed for good)


def replay_headers(letter: DeadLetter, raw: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    kept = [
        (key, bytes(value))
        for key, value in raw
        if key not in DEAD_LETTER_HEADERS and key != REPLAYED_FROM_HEADER
    ]
    return [*kept, (REPLAYED_FROM_HEADER, letter.ref.encode())]


async def replay(
    bootstrap_servers: str | KafkaConnection,
    topics: Sequence[str],
    since: datetime | None = None,
    *,
    dry_run: bool = False,
) -> ReplayReport:
    """Re-publishes every dead letter not yet replayed (and dead-lettered since `since`) to its
    original topic, then commits the replay group past them."""
    consumer = _replay_consumer(bootstrap_servers)
    producer = AIOKafkaProducer(
        **client_options(bootstrap_servers),
        client_id=REPLAY_GROUP,
        enable_idempotence=True,
        acks="all",
    )
    await consumer.start()
    await producer.start()
    try:
        partitions = await _partitions(consumer, topics)
        replayed_below = await _replayed_below(consumer, partitions)
        records = await _read_to_end(consumer, {tp: replayed_below.get(tp) for tp in partitions})
        sent: list[DeadLetter] = []
        passed_over = 0
        next_offsets: dict[TopicPartition, int] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            next_offsets[tp] = record.offset + 1
            if record.value is None:
                continue  # an erasure's tombstone on a compacted dead-letter topic
            letter = _dead_letter(record, replayed_below)
            if since is not None and letter.dead_lettered_at < since:
                passed_over += 1
                continue
            if not dry_run:
                await producer.send_and_wait(
                    letter.original_topic,
                    value=record.value,
                    key=record.key,
                    headers=replay_headers(letter, record.headers or ()),
                )
            sent.append(letter)
        if next_offsets and not dry_run:
            # After every send was acknowledged: a replay cut short sends again, and the
            # inboxes absorb what arrives twice.
            await consumer.commit(next_offsets)
        return ReplayReport(replayed=sent, passed_over=passed_over)
    finally:
        await producer.stop()
        await consumer.stop()
