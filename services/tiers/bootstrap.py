"""Wires the tiers service: the one place that builds engines, clients and workers."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from services.tiers.adapters import tables
from services.tiers.adapters.program_file import load_program
from services.tiers.adapters.repository import SqlTierRepository
from services.tiers.domain.model import Program
from services.tiers.handlers import HANDLERS, Context
from services.tiers.settings import TiersSettings
from shared import topics
from shared.clock import Clock, SystemClock
from shared.consumer import EventHandler
from shared.events import CloudEvent
from shared.outbox import Outbox
from shared.runtime import Runtime, service_runtime
from shared.settings import ServiceSettings

SERVICE = "tiers"
CONSUMES = (topics.CUSTOMERS, topics.PURCHASES)


def make_event_handler(program: Program, clock: Clock) -> EventHandler:
    async def handle(conn: AsyncConnection, event: CloudEvent) -> None:
        handler = HANDLERS.get(event.type)
        if handler is None:
            return  # a type this service has no use for
        ctx = Context(
            tiers=SqlTierRepository(conn),
            sink=Outbox(conn, tables.outbox, clock),
            program=program,
            now=clock.now(),
        )
        await handler(event, ctx)

    return handle


async def bootstrap(
    settings: ServiceSettings, clock: Clock | None = None, program: Program | None = None
) -> Runtime:
    assert isinstance(settings, TiersSettings)
    clock = clock or SystemClock()
    program = program or load_program(settings.program_file)
    return service_runtime(
        SERVICE,
        settings,
        clock,
        outbox=tables.outbox,
        inbox=tables.inbox,
        consumes=CONSUMES,
        handle=make_event_handler(program, clock),
    )
