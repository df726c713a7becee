"""Wires the points service: the one place that builds engines, clients and workers."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from services.points.adapters import tables
from services.points.adapters.program_file import load_program
from services.points.adapters.repository import SqlLedgerRepository
from services.points.domain.model import Program
from services.points.handlers import HANDLERS, Context
from services.points.settings import PointsSettings
from shared import topics
from shared.clock import Clock, SystemClock
from shared.consumer import EventHandler
from shared.events import CloudEvent
from shared.outbox import Outbox
from shared.runtime import Runtime, service_runtime
from shared.settings import ServiceSettings

SERVICE = "points"
CONSUMES = (topics.CUSTOMERS, topics.PURCHASES, topics.TIERS)


def make_event_handler(program: Program, clock: Clock) -> EventHandler:
    async def handle(conn: AsyncConnection, event: CloudEvent) -> None:
        handler = HANDLERS.get(event.type)
        if handler is None:
            return  # a type this service has no use for
        ctx = Context(
            ledger=SqlLedgerRepository(conn),
            sink=Outbox(conn, tables.outbox, clock),
            program=program,
            now=clock.now(),
        )
        await handler(event, ctx)

    return handle


async def bootstrap(settings: ServiceSettings, clock: Clock | None = None) -> Runtime:
    assert isinstance(settings, PointsSettings)
    clock = clock or SystemClock()
    program = load_program(settings.program_file)
    return service_runtime(
        SERVICE,
        settings,
        clock,
        outbox=tables.outbox,
        inbox=tables.inbox,
        consumes=CONSUMES,
        handle=make_event_handler(program, clock),
    )
