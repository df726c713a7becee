"""Wires the notifications service: the one place that builds engines, clients and workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.notifications.adapters import tables
from services.notifications.adapters.repository import SqlNotificationRepository
from services.notifications.adapters.smtp import SmtpEmailSender
from services.notifications.dispatcher import DeliveryDispatcher, DispatchUnit, UnitFactory
from services.notifications.domain.model import DeliveryPolicy
from services.notifications.handlers import HANDLERS, Context
from services.notifications.settings import NotificationsSettings
from shared import topics
from shared.clock import Clock, SystemClock
from shared.consumer import EventHandler
from shared.events import CloudEvent
from shared.outbox import Outbox
from shared.runtime import Runtime, service_runtime
from shared.settings import ServiceSettings

SERVICE = "notifications"
CONSUMES = (topics.CUSTOMERS, topics.TIERS, topics.POINTS, topics.PURCHASES)


def make_event_handler(clock: Clock) -> EventHandler:
    async def handle(conn: AsyncConnection, event: CloudEvent) -> None:
        handler = HANDLERS.get(event.type)
        if handler is None:
            return  # a type this service has no use for
        ctx = Context(
            notifications=SqlNotificationRepository(conn),
            sink=Outbox(conn, tables.outbox, clock),
            now=clock.now(),
        )
        await handler(event, ctx)

    return handle


def make_dispatch_units(engine: AsyncEngine, clock: Clock) -> UnitFactory:
    @asynccontextmanager
    async def unit() -> AsyncIterator[DispatchUnit]:
        async with engine.begin() as conn:
            yield DispatchUnit(
                notifications=SqlNotificationRepository(conn),
                sink=Outbox(conn, tables.outbox, clock),
            )

    return unit


def delivery_policy(settings: NotificationsSettings) -> DeliveryPolicy:
    return DeliveryPolicy(
        max_attempts=settings.max_delivery_attempts,
        retry_backoff=timedelta(seconds=settings.retry_backoff_seconds),
        retry_backoff_max=timedelta(seconds=settings.retry_backoff_max_seconds),
        contact_wait=timedelta(minutes=settings.contact_wait_minutes),
    )


async def bootstrap(settings: ServiceSettings, clock: Clock | None = None) -> Runtime:
    assert isinstance(settings, NotificationsSettings)
    clock = clock or SystemClock()
    runtime = service_runtime(
        SERVICE,
        settings,
        clock,
        outbox=tables.outbox,
        inbox=tables.inbox,
        consumes=CONSUMES,
        handle=make_event_handler(clock),
    )
    runtime.workers.append(
        DeliveryDispatcher(
            transactions=make_dispatch_units(runtime.engine, clock),
            sender=SmtpEmailSender(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_from,
                timeout_seconds=settings.smtp_timeout_seconds,
                username=settings.smtp_username,
                password=(
                    settings.smtp_password.get_secret_value() if settings.smtp_password else None
                ),
            ),
            clock=clock,
            policy=delivery_policy(settings),
            interval=settings.dispatch_interval_seconds,
            batch_size=settings.dispatch_batch_size,
            after_commit=runtime.relay.notify,
        )
    )
    return runtime
