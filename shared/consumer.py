"""The consumer loop: each event applied once, offsets committed after the effect.

For every message: claim its id in the inbox and apply the handler in one database
transaction; commit the Kafka offset only after that transaction. A redelivered message
finds its id claimed and changes nothing. A message that cannot be applied after bounded
attempts goes to `<topic>.dlq` with the error, so it never blocks its partition; while the
database itself is unreachable the loop waits instead, since every message would fail.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared import inbox
from shared.clock import Clock
from shared.events import CloudEvent, UnknownEventType
from shared.outbox import Producer
from shared.topics import dead_letter_topic

log = logging.getLogger(__name__)

EventHandler = Callable[[AsyncConnection, CloudEvent], Awaitable[None]]

CONSUMED = Counter(
    "fedelta_events_consumed_total",
    "Messages the consumer finished with, by outcome",
    ["topic", "outcome"],
)

# The database being away is not the message's fault: wait for it rather than dead-letter.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    ConnectionError,
    OSError,
    TimeoutError,
)


class RetryableError(Exception):
    """Raised by a handler when the event cannot be applied yet but may be later."""


@dataclass
class EventConsumer:
    service: str
    topics: Sequence[str]
    bootstrap_servers: str
    engine: AsyncEngine
    inbox_table: sa.Table
    handle: EventHandler
    dead_letters: Producer
    clock: Clock
    max_attempts: int = 5
    retry_backoff: float = 0.2
    after_commit: Callable[[], None] | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    @property
    def name(self) -> str:
        return f"{self.service}-consumer"

    async def run(self) -> None:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.bootstrap_servers,
            group_id=f"fedelta-{self.service}",
            client_id=f"fedelta-{self.service}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=200)
                for partition, messages in batches.items():
                    for message in messages:
                        await self.process(message)
                    await consumer.commit({partition: messages[-1].offset + 1})
        finally:
            await consumer.stop()

    async def stop(self) -> None:
        self._stopping.set()

    async def process(self, message: Any) -> None:
        topic: str = message.topic
        if message.value is None:
            CONSUMED.labels(topic, "tombstone").inc()
            return
        try:
            event = CloudEvent.from_bytes(message.value)
            event.payload()
        except (ValidationError, UnknownEventType, ValueError) as error:
            await self._dead_letter(message, error, attempts=1)
            return
        attempt = 0
        while True:
            attempt += 1
            try:
                applied = await self._apply(event)
            except TRANSIENT_ERRORS as error:
                log.warning(
                    "%s: database unreachable, waiting (%s)", self.name, type(error).__name__
                )
                attempt -= 1
                await asyncio.sleep(min(5.0, self.retry_backoff * 10))
                continue
            except Exception as error:
                if attempt >= self.max_attempts:
                    await self._dead_letter(message, error, attempts=attempt)
                    return
                log.warning(
                    "%s: event %s failed (attempt %d of %d): %s",
                    self.name,
                    event.id,
                    attempt,
                    self.max_attempts,
                    type(error).__name__,
                )
                await asyncio.sleep(self.retry_backoff * 2 ** (attempt - 1))
                continue
            CONSUMED.labels(topic, "applied" if applied else "duplicate").inc()
            if applied and self.after_commit is not None:
                self.after_commit()
            return

    async def _apply(self, event: CloudEvent) -> bool:
        async with self.engine.begin() as conn:
            if not await inbox.claim(
                conn, self.inbox_table, event.id, event.type, self.clock.now()
            ):
                return False
            await self.handle(conn, event)
            return True

    async def _dead_letter(self, message: Any, error: BaseException, *, attempts: int) -> None:
        # The error text names the failure only: message bodies may hold personal data.
        reason = f"{type(error).__name__}: {error}"[:2000]
        headers = [
            ("fedelta-error", reason.encode()),
            ("fedelta-consumer", self.service.encode()),
            ("fedelta-original-topic", message.topic.encode()),
            ("fedelta-original-partition", str(message.partition).encode()),
            ("fedelta-original-offset", str(message.offset).encode()),
            ("fedelta-attempts", str(attempts).encode()),
        ]
        while True:
            try:
                await self.dead_letters.send_and_wait(
                    dead_letter_topic(message.topic),
                    value=message.value,
                    key=message.key,
                    headers=headers,
                )
                break
            except Exception:
                # Never drop it: without the dead-letter copy the offset must not move on.
                log.warning("%s: dead-letter publish failed, retrying", self.name, exc_info=True)
                await asyncio.sleep(1.0)
        log.error(
            "%s: dead-lettered %s[%s]@%s after %d attempt(s): %s",
            self.name,
            message.topic,
            message.partition,
            message.offset,
            attempts,
            type(error).__name__,
        )
        CONSUMED.labels(message.topic, "dead_lettered").inc()
