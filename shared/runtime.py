"""What a running service holds (engine, clock, Kafka clients, background workers) and how
its workers are kept alive."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import Clock
from shared.kafka import ResilientProducer
from shared.outbox import OutboxRelay

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
