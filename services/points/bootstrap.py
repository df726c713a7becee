"""Wires the points service: the one place that builds engines, clients and workers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from services.points.adapters import tables
from services.points.adapters.program_file import load_program
from services.points.adapters.repositories.consumer import consumer_repository
from services.points.domain.model import Program
from services.points.handlers import HANDLED_TYPES, Context, apply_batch
from services.points.jobs import points_jobs
from services.points.settings import PointsSettings
from shared.clock import Clock, SystemClock
from shared.messaging import topics
from shared.messaging.consumer import Subscription
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import EventSink, with_outbox
from shared.runtime.process import Runtime, service_runtime
from shared.settings import ServiceSettings
from shared.storage.retention import purge_idempotency_keys

SERVICE = "points"
CONSUMES = (topics.CUSTOMERS, topics.PURCHASES, topics.TIERS, topics.ENGAGEMENT, topics.SEGMENTS)


def make_subscription(program: Program, clock: Clock) -> Subscription:
    async def apply(conn: AsyncConnection, batch: Sequence[CloudEvent], sink: EventSink) -> None:
        context = Context(
            ledger=consumer_repository(conn), sink=sink, program=program, now=clock.now()
        )
        await apply_batch(batch, context)

    return Subscription(
        topics=CONSUMES, event_types=HANDLED_TYPES, handle=with_outbox(tables.outbox, clock, apply)
    )


async def bootstrap(
    settings: ServiceSettings, clock: Clock | None = None, program: Program | None = None
) -> Runtime:
    assert isinstance(settings, PointsSettings)
    clock = clock or SystemClock()
    program = program or load_program(settings.program_file)
    return service_runtime(
        SERVICE,
        settings,
        clock,
        outbox=tables.outbox,
        inbox=tables.inbox,
        subscription=make_subscription(program, clock),
        jobs=[
            *points_jobs(program, clock),
            purge_idempotency_keys(
                tables.idempotency_keys, timedelta(days=settings.retention_days)
            ),
        ],
    )
