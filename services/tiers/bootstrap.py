"""Wires the tiers service: the one place that builds engines, clients and workers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from services.tiers.adapters import tables
from services.tiers.adapters.program_file import load_program
from services.tiers.adapters.repositories.consumer import consumer_repository
from services.tiers.handlers import HANDLED_TYPES, Context, apply_batch
from services.tiers.jobs import tier_jobs
from services.tiers.programs import ProgramSource
from services.tiers.settings import TiersSettings
from shared.clock import Clock, SystemClock
from shared.messaging import topics
from shared.messaging.consumer import Subscription
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import EventSink, with_outbox
from shared.runtime.process import Runtime, service_runtime
from shared.settings import ServiceSettings
from shared.storage.retention import purge_idempotency_keys

log = logging.getLogger(__name__)

SERVICE = "tiers"
CONSUMES = (topics.CUSTOMERS, topics.PURCHASES)


def make_subscription(programs: ProgramSource, clock: Clock) -> Subscription:
    async def apply(conn: AsyncConnection, batch: Sequence[CloudEvent], sink: EventSink) -> None:
        # Read in the batch's transaction, after any replay switch under way has committed.
        program = await programs.for_writing(conn)
        context = Context(
            tiers=consumer_repository(conn), sink=sink, program=program, now=clock.now()
        )
        await apply_batch(batch, context)

    return Subscription(
        topics=CONSUMES, event_types=HANDLED_TYPES, handle=with_outbox(tables.outbox, clock, apply)
    )


def configured_programs(settings: TiersSettings) -> ProgramSource:
    """The service's program file (a malformed one stops the service here), in force until a
    replay switches to another program."""
    return ProgramSource(load_program(settings.program_file), str(settings.program_file))


async def bootstrap(
    settings: ServiceSettings, clock: Clock | None = None, programs: ProgramSource | None = None
) -> Runtime:
    assert isinstance(settings, TiersSettings)
    clock = clock or SystemClock()
    programs = programs or configured_programs(settings)
    runtime = service_runtime(
        SERVICE,
        settings,
        clock,
        outbox=tables.outbox,
        inbox=tables.inbox,
        subscription=make_subscription(programs, clock),
        jobs=[
            *tier_jobs(programs, clock),
            purge_idempotency_keys(
                tables.idempotency_keys, timedelta(days=settings.retention_days)
            ),
        ],
    )
    try:
        await asyncio.wait_for(programs.announce(runtime.engine), timeout=5.0)
    except Exception as error:
        # Only a log line is lost (the service starts with its database away): every
        # batch, job and request looks again.
        log.warning(
            "tiers program: could not look for a switched replay (%s)", type(error).__name__
        )
    return runtime
