"""The replay's reader of the topics: partitions assigned, no consumer group (the live group's
offsets are left alone), from the earliest offset; and what each record means to a rebuild."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from services.tiers import ports
from services.tiers.domain.imports import imported_activity
from services.tiers.domain.model import (
    Program,
    QualifyingActivity,
    purchase_activity_id,
    refund_activity_id,
)
from services.tiers.handlers import HANDLED_TYPES
from services.tiers.ports import Partition, Polled, ReplayBatch
from shared.messaging import events
from shared.messaging.events import CloudEvent
from shared.messaging.kafka import EVENT_TYPE_HEADER, KafkaConnection, client_options


@asynccontextmanager
async def kafka_replay_reader(
    bootstrap_servers: str | KafkaConnection, program: Program, max_records: int
) -> AsyncIterator[ports.ReplayReader]:
    """A started reader, stopped on the way out."""
    consumer = AIOKafkaConsumer(
        **client_options(bootstrap_servers),
        client_id="fedelta-tiers-replay",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=max_records,
    )
    await consumer.start()
    try:
        yield KafkaReplayReader(consumer, program, max_records)
    finally:
        await consumer.stop()


class KafkaReplayReader:
    def __init__(self, consumer: AIOKafkaConsumer, program: Program, max_records: int) -> None:
        self._consumer = consumer
        self._program = program
        self._max_records = max_records
        self._partitions: list[TopicPartition] = []

    async def assign(self, topics: Sequence[str]) -> dict[Partition, int]:
        partitions: list[TopicPartition] = []
        for topic in topics:
            found = self._consumer.partitions_for_topic(topic)
            if not found:
                await self._consumer._client.force_metadata_update()
                found = self._consumer.partitions_for_topic(topic)
            partitions.extend(TopicPartition(topic, p) for p in sorted(found or ()))
        self._consumer.assign(partitions)
        self._partitions = partitions
        beginnings = await self._consumer.beginning_offsets(partitions)
        return {Partition(tp.topic, tp.partition): beginnings[tp] for tp in partitions}

    def seek(self, positions: Mapping[Partition, int]) -> None:
        for partition, offset in positions.items():
            self._consumer.seek(TopicPartition(partition.topic, partition.partition), offset)

    async def end_offsets(self) -> dict[Partition, int]:
        ends = await self._consumer.end_offsets(self._partitions)
        return {Partition(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    async def positions(self) -> dict[Partition, int]:
        return {
            Partition(tp.topic, tp.partition): await self._consumer.position(tp)
            for tp in self._consumer.assignment()
        }

    async def poll(self) -> Polled:
        polled = await self._consumer.getmany(timeout_ms=1000, max_records=self._max_records)
        messages = [m for records in polled.values() for m in records]
        return Polled(len(messages), read_records(messages, self._program), await self.positions())


def read_records(messages: Sequence[Any], program: Program) -> ReplayBatch:
    """The facts in these records, the first of each kept. What the live consumer
    dead-letters (unreadable, invalid, another currency) is skipped and counted."""
    batch = ReplayBatch()
    for message in messages:
        if message.value is None:
            continue  # a tombstone: an erased profile
        announced = _header(message, EVENT_TYPE_HEADER)
        if announced is not None and announced not in HANDLED_TYPES:
            continue
        try:
            event = CloudEvent.from_bytes(message.value)
            if event.type not in HANDLED_TYPES:
                continue
            _read_event(event, program, batch)
        except (ValidationError, ValueError):
            batch.skipped += 1
            continue
        batch.events += 1
    return batch


def _read_event(event: CloudEvent, program: Program, batch: ReplayBatch) -> None:
    if event.type == events.PURCHASE_COMPLETED:
        _read_purchase(event.data_as(events.PurchaseCompleted), program, batch)
    elif event.type == events.PURCHASE_REFUNDED:
        _read_refund(event.data_as(events.PurchaseRefunded), batch)
    elif event.type == events.POINTS_IMPORTED:
        _read_import(event.data_as(events.PointsImported), program, batch)
    else:
        enrolled = event.data_as(
            events.CustomerEnrolled
            if event.type == events.CUSTOMER_ENROLLED
            else events.CustomerUpdated
        )
        _read_enrolment(enrolled.customer_id, enrolled.enrolled_at, batch)


def _read_purchase(
    purchase: events.PurchaseCompleted, program: Program, batch: ReplayBatch
) -> None:
    if purchase.currency != program.currency:
        raise ValueError("a purchase in another currency")
    activity = QualifyingActivity(
        activity_id=purchase_activity_id(purchase.partner_id, purchase.purchase_id),
        customer_id=purchase.customer_id,
        amount=purchase.total,
        occurred_at=purchase.occurred_at,
    )
    batch.activities.setdefault(activity.activity_id, activity)
    batch.enrolments.setdefault(purchase.customer_id, None)


def _read_refund(refund: events.PurchaseRefunded, batch: ReplayBatch) -> None:
    activity = QualifyingActivity(
        activity_id=refund_activity_id(refund.partner_id, refund.refund_id),
        customer_id=refund.customer_id,
        amount=-refund.amount,
        occurred_at=refund.occurred_at,
    )
    batch.activities.setdefault(activity.activity_id, activity)
    batch.refunded[activity.activity_id] = purchase_activity_id(
        refund.partner_id, refund.purchase_id
    )


def _read_import(imported: events.PointsImported, program: Program, batch: ReplayBatch) -> None:
    """An import's opening tier, refused like the live consumer refuses it (a tier the
    program does not have); one naming no tier, or the entry tier, changes nothing."""
    activity = imported_activity(
        program,
        imported.customer_id,
        tier=imported.tier,
        tier_since=imported.tier_since,
        imported_at=imported.imported_at,
    )
    if activity is None:
        return
    batch.activities.setdefault(activity.activity_id, activity)
    batch.enrolments.setdefault(imported.customer_id, None)


def _read_enrolment(customer_id: str, enrolled_at: datetime, batch: ReplayBatch) -> None:
    if batch.enrolments.get(customer_id) is None:
        batch.enrolments[customer_id] = enrolled_at


def _header(message: Any, name: str) -> str | None:
    for key, value in getattr(message, "headers", None) or ():
        if key == name:
            return bytes(value).decode(errors="replace")
    return None
