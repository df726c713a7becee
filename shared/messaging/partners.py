"""The partners a consumer knows: read from ingest's compacted partners topic, so that an event
naming a partner nobody provisioned is refused (dead-lettered as `UnknownPartner`, counted)
instead of earning points or a tier.

Ingest publishes `fedelta.partner.provisioned.v1` in the transaction that provisions a partner
(its outbox), before the partner can sign a call; every partner's latest record stays on the
compacted topic. A consumer reads the whole topic when it starts, without a consumer group
(every instance keeps the whole set), and reads on from where it was when a batch names a
partner it does not know yet: the partner's record and the partner's first purchase travel on
different topics, with no order between them, so the purchase may come first. It then reads
the topic to its end again, with backoff, until `wait_seconds` after the event was written
(the record's timestamp; never later than `wait_seconds` from now), and only a partner still
missing then is unknown. So the wait holds a batch (and its partitions) for `wait_seconds` at
most, once however many of its events name unknown partners, and an event read long after it
was written (a consumer catching up, a replay) costs one read of the topic, no wait.

A partner is never withdrawn from the set: a revoked partner's earlier events, still on the
topics or redelivered, stay valid (ingest refuses the revoked partner's new calls).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from shared.messaging import acls
from shared.messaging.connection import KafkaConnection, client_options
from shared.messaging.events import PARTNER_PROVISIONED, CloudEvent, PartnerProvisioned, kind_of
from shared.messaging.topics import PARTNERS

log = logging.getLogger(__name__)

# How long a batch naming an unknown partner waits for the partner's record by default: far
# longer than ingest's relay takes to publish it (well under a second).
WAIT_SECONDS = 30.0
FIRST_BACKOFF_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 2.0


class UnknownPartner(ValueError):
    """The event names a partner that ingest never provisioned."""


def named_partner(event: CloudEvent) -> str | None:
    """The partner an event of ingest's names (`partner_id` of its payload), if any: the
    events of other producers are not checked here (their source is, by provenance)."""
    if not _from_ingest(event.type):
        return None
    partner: str | None = getattr(event.payload(), "partner_id", None)
    return partner


@functools.cache
def _from_ingest(event_type: str) -> bool:
    """Whether ingest produces the type (worked out once per type: asked for every event)."""
    return acls.owner(kind_of(event_type).topic) == "ingest"


@dataclass
class KnownPartners:
    """The set of provisioned partners, kept by reading the partners topic on demand."""

    connection: str | KafkaConnection
    client_id: str
    wait_seconds: float = WAIT_SECONDS
    # The wall clock (seconds since the epoch, as the records' timestamps), injected by tests.
    wall_clock: Callable[[], float] = time.time
    _known: set[str] = field(default_factory=set, init=False)
    _consumer: Any = field(default=None, init=False)
    _partitions: list[TopicPartition] = field(default_factory=list, init=False)

    def __contains__(self, partner_id: object) -> bool:
        return partner_id in self._known

    async def start(self) -> None:
        """Assigns every partition of the topic from its beginning and reads to its end."""
        consumer = AIOKafkaConsumer(
            **client_options(self.connection),
            client_id=f"{self.client_id}-partners",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        self._consumer = consumer
        try:
            await self.read_to_end()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def unknown(
        self, partner_ids: Collection[str], written_at: float | None = None
    ) -> set[str]:
        """Of these partners, those still not provisioned once the topic has been read on, with
        backoff, until `wait_seconds` after `written_at` (the newest of the events naming them,
        seconds since the epoch; now when not known) and at least once."""
        now = self.wall_clock()
        written = now if written_at is None else min(written_at, now)
        deadline = written + self.wait_seconds
        missing = {p for p in partner_ids if p not in self._known}
        backoff = FIRST_BACKOFF_SECONDS
        while missing:
            await self.read_to_end()
            missing = {p for p in missing if p not in self._known}
            left = deadline - self.wall_clock()
            if not missing or left <= 0:
                break
            await asyncio.sleep(min(backoff, left))
            backoff = min(MAX_BACKOFF_SECONDS, backoff * 2)
        return missing

    async def read_to_end(self) -> None:
        """Reads every record written to the topic before this call."""
        consumer = self._consumer
        assert consumer is not None, "KnownPartners.start() first"
        if not self._partitions and not await self._assign():
            return
        ends: dict[TopicPartition, int] = await consumer.end_offsets(self._partitions)
        while not await self._reached(ends):
            polled = await consumer.getmany(timeout_ms=500)
            for records in polled.values():
                self.learn(records)

    async def _reached(self, ends: dict[TopicPartition, int]) -> bool:
        for partition, end in ends.items():
            if await self._consumer.position(partition) < end:
                return False
        return True

    def learn(self, records: Collection[Any]) -> None:
        """Keeps the partners of these records; a record that is not a partner's is skipped."""
        for record in records:
            if record.value is None:
                continue
            try:
                event = CloudEvent.from_bytes(record.value)
                if event.type != PARTNER_PROVISIONED:
                    continue
                payload = event.payload()
            except (ValidationError, ValueError) as error:
                log.warning(
                    "partners: record at %s/%d skipped (%s)",
                    record.topic,
                    record.offset,
                    type(error).__name__,
                )
                continue
            assert isinstance(payload, PartnerProvisioned)
            self._known.add(payload.partner_id)

    async def _assign(self) -> bool:
        """Every partition of the topic, from its beginning; False while the topic is missing
        (looked for again at the next read)."""
        consumer = self._consumer
        found = consumer.partitions_for_topic(PARTNERS)
        if not found:
            await consumer._client.force_metadata_update()
            found = consumer.partitions_for_topic(PARTNERS)
        if not found:
            log.warning("partners: topic %s not found; no partner is known yet", PARTNERS)
            return False
        self._partitions = [TopicPartition(PARTNERS, p) for p in sorted(found)]
        consumer.assign(self._partitions)
        await consumer.seek_to_beginning(*self._partitions)
        return True
