"""Wires the engagement service: the one place that builds engines, clients and workers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from services.engagement.adapters import tables
from services.engagement.adapters.repositories.consumer import consumer_repository
from services.engagement.handlers import HANDLED_TYPES, SOURCE, Context, apply_batch
from services.engagement.jobs import BirthdayRewards
from services.engagement.settings import EngagementSettings
from shared.clock import Clock, SystemClock
from shared.messaging import topics
from shared.messaging.consumer import Subscription
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import EventSink, with_outbox
from shared.runtime.process import Runtime, service_runtime
from shared.settings import ServiceSettings
from shared.storage.retention import purge_idempotency_keys

SERVICE = SOURCE
CONSUMES = (topics.CUSTOMERS, topics.PURCHASES, topics.TIERS, topics.FEEDBACK, topics.SEGMENTS)


def make_subscription(clock: Clock, surprise_key: bytes | None = None) -> Subscription:
    async def apply(conn: AsyncConnection, batch: Sequence[CloudEvent], sink: EventSink) -> None:
        context = Context(
            engagement=consumer_repository(conn),
            sink=sink,
            now=clock.now(),
            surprise_key=surprise_key,
        )
        await apply_batch(batch, context)

    return Subscription(
        topics=CONSUMES, event_types=HANDLED_TYPES, handle=with_outbox(tables.outbox, clock, apply)
    )


def surprise_key(settings: EngagementSettings) -> bytes:
    return settings.surprise_secret.get_secret_value().encode()


async def bootstrap(settings: ServiceSettings, clock: Clock | None = None) -> Runtime:
    assert isinstance(settings, EngagementSettings)
    clock = clock or SystemClock()
    return service_runtime(
        SERVICE,
        settings,
        clock,
        outbox=tables.outbox,
        inbox=tables.inbox,
        subscription=make_subscription(clock, surprise_key(settings)),
        jobs=[
            purge_idempotency_keys(
                tables.idempotency_keys, timedelta(days=settings.retention_days)
            ),
            BirthdayRewards(clock),
        ],
    )
