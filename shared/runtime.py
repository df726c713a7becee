"""What a running service holds (engine, clock, Kafka clients, background workers) and how
its workers are kept alive."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import Clock
from shared.consumer import EventConsumer, EventHandler
from shared.db import create_engine
from shared.kafka import ResilientProducer
from shared.outbox import OutboxRelay
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

WORKER_RESTARTS = Counter(
    "fedelta_worker_restarts_total", "Background workers restarted after a failure", ["worker"]
)


class Worker(Protocol):
    @property
    def name(self) -> str: ...

    async def run(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Runtime:
    """Built by each service's bootstrap inside the lifespan, never at import time."""

    engine: AsyncEngine
    clock: Clock
    kafka_bootstrap_servers: str
    producer: ResilientProducer
    relay: OutboxRelay
    workers: list[Worker] = field(default_factory=list)

    async def aclose(self) -> None:
        await self.producer.close()
        await self.engine.dispose()


def service_runtime(
    service: str,
    settings: ServiceSettings,
    clock: Clock,
    *,
    outbox: sa.Table,
    inbox: sa.Table | None = None,
    consumes: Sequence[str] = (),
    handle: EventHandler | None = None,
) -> Runtime:
    """What every service runs: an engine, one producer (outbox and dead letters), the relay,
    and — for a service that consumes — the consumer. A service appends workers of its own."""
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    producer = ResilientProducer(settings.kafka_bootstrap_servers, client_id=f"fedelta-{service}")
    relay = OutboxRelay(engine, outbox, producer, settings.outbox_poll_interval_seconds)
    workers: list[Worker] = [relay]
    if consumes:
        assert inbox is not None and handle is not None, "a consumer needs an inbox and a handler"
        consumer = EventConsumer(
            service=service,
            topics=consumes,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            engine=engine,
            inbox_table=inbox,
            handle=handle,
            dead_letters=producer,
            clock=clock,
            max_attempts=settings.consumer_max_attempts,
            retry_backoff=settings.consumer_retry_backoff_seconds,
            after_commit=relay.notify,
        )
        workers.insert(0, consumer)
    return Runtime(
        engine=engine,
        clock=clock,
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        producer=producer,
        relay=relay,
        workers=workers,
    )


async def supervise(
    worker: Worker, *, first_backoff: float = 0.5, max_backoff: float = 15.0
) -> None:
    """Runs a worker until it stops by itself; restarts it, with backoff, when it fails."""
    backoff = first_backoff
    while True:
        try:
            await worker.run()
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:
            WORKER_RESTARTS.labels(worker.name).inc()
            log.warning(
                "%s failed (%s: %s); restarting in %.1fs",
                worker.name,
                type(error).__name__,
                error,
                backoff,
            )
            await asyncio.sleep(backoff)
            backoff = min(max_backoff, backoff * 2)


class RunningWorkers:
    def __init__(self, workers: list[Worker]) -> None:
        self._workers = workers
        self._tasks = [asyncio.create_task(supervise(w), name=w.name) for w in workers]

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Asks every worker to finish its current message, then cancels what is still busy."""
        for worker in self._workers:
            await worker.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
