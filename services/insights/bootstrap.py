"""Wires the insights service: the one place that builds engines, clients and workers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from services.insights.adapters import tables
from services.insights.adapters.program_file import load_rules
from services.insights.adapters.repositories.consumer import consumer_repository
from services.insights.domain.model import Rules
from services.insights.handlers import HANDLED_TYPES, SOURCE, Context, apply_batch
from services.insights.jobs import SegmentsJob
from services.insights.settings import InsightsSettings
from shared.clock import Clock, SystemClock
from shared.messaging import topics
from shared.messaging.consumer import Subscription
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import EventSink, with_outbox
from shared.runtime.process import Runtime, service_runtime
from shared.settings import ServiceSettings
from shared.storage.retention import purge_idempotency_keys

SERVICE = SOURCE
CONSUMES = (
    topics.CUSTOMERS,
    topics.PURCHASES,
    topics.POINTS,
    topics.TIERS,
    topics.ENGAGEMENT,
    topics.FEEDBACK,
)


def make_subscription(clock: Clock, rules: Rules) -> Subscription:
    async def apply(conn: AsyncConnection, batch: Sequence[CloudEvent], sink: EventSink) -> None:
        context = Context(
            insights=consumer_repository(conn), sink=sink, now=clock.now(), rules=rules
        )
        await apply_batch(batch, context)

    return Subscription(
        topics=CONSUMES, event_types=HANDLED_TYPES, handle=with_outbox(tables.outbox, clock, apply)
    )


async def bootstrap(settings: ServiceSettings, clock: Clock | None = None) -> Runtime:
    assert isinstance(settings, InsightsSettings)
    clock = clock or SystemClock()
    rules = load_rules(settings.program_file)
    return service_runtime(
        SERVICE,
        settings,
        clock,
        outbox=tables.outbox,
        inbox=tables.inbox,
        subscription=make_subscription(clock, rules),
        jobs=[
            purge_idempotency_keys(
                tables.idempotency_keys, timedelta(days=settings.retention_days)
            ),
            SegmentsJob(clock, rules),
        ],
    )
