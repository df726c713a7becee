"""What a running service holds (engine, clock, Kafka clients, background workers) and how
its workers are kept alive."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import Clock
from shared.messaging.consumer import EventConsumer, Subscription
from shared.messaging.kafka import KafkaConnection, ResilientProducer
from shared.messaging.partners import KnownPartners
from shared.messaging.relay import OutboxRelay, PostgresWakeups
from shared.messaging.topics import checks_partners
from shared.observability.metrics import WORKER_RESTARTS
from shared.runtime.jobs import Job, JobScheduler
from shared.settings import ServiceSettings
from shared.storage.db import create_engine
from shared.storage.retention import purge_inbox

log = logging.getLogger(__name__)


def kafka_connection(settings: ServiceSettings) -> KafkaConnection:
    """The service's own principal on the broker, from its settings."""
    password = settings.kafka_password
    return KafkaConnection(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        username=settings.kafka_username,
        password=password.get_secret_value() if password is not None else None,
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
    kafka: KafkaConnection
    producer: ResilientProducer
    relay: OutboxRelay
    workers: list[Worker] = field(default_factory=list)
    # Time-driven jobs: run by the scheduler worker and by an admin (shared.web.jobs_api).
    jobs: list[Job] = field(default_factory=list)

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
    subscription: Subscription | None = None,
    jobs: Sequence[Job] = (),
) -> Runtime:
    """What every service runs: an engine, one producer (outbox and dead letters), the relay,
    and — for a service that consumes — the consumer and the inbox's purge. `jobs` are the
    service's own time-driven jobs; a service appends workers of its own."""
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    kafka = kafka_connection(settings)
    producer = ResilientProducer(kafka, client_id=f"fedelta-{service}")
    relay = OutboxRelay(
        engine,
        outbox,
        producer,
        poll_interval=settings.outbox_poll_interval_seconds,
        batch_size=settings.outbox_batch_size,
        wake_source=PostgresWakeups.for_engine(engine),
        clock=clock,
    )
    workers: list[Worker] = [relay]
    retention = timedelta(days=settings.retention_days)
    all_jobs: list[Job] = [purge_inbox(inbox, retention)] if inbox is not None else []
    all_jobs.extend(jobs)
    if subscription is not None:
        assert inbox is not None, "a consumer needs an inbox"
        consumer = EventConsumer(
            service=service,
            subscription=subscription,
            bootstrap_servers=kafka,
            engine=engine,
            inbox_table=inbox,
            dead_letters=producer,
            clock=clock,
            max_attempts=settings.consumer_max_attempts,
            retry_backoff=settings.consumer_retry_backoff_seconds,
            batch_max_records=settings.consumer_batch_max_records,
            after_commit=relay.notify,
            partners=_known_partners(service, settings, kafka, subscription),
        )
        workers.insert(0, consumer)
    if all_jobs:
        workers.append(
            JobScheduler(engine, all_jobs, clock, interval=settings.jobs_interval_seconds)
        )
    return Runtime(
        engine=engine,
        clock=clock,
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        kafka=kafka,
        producer=producer,
        relay=relay,
        workers=workers,
        jobs=all_jobs,
    )


def _known_partners(
    service: str, settings: ServiceSettings, kafka: KafkaConnection, subscription: Subscription
) -> KnownPartners | None:
    """The partners a consumer of events that name one checks them against."""
    if not checks_partners(subscription.topics):
        return None
    return KnownPartners(
        kafka,
        client_id=f"fedelta-{service}",
        wait_seconds=settings.consumer_unknown_partner_wait_seconds,
    )


async def supervise(
    worker: Worker,
    *,
    first_backoff: float = 0.5,
    max_backoff: float = 15.0,
    healthy_after: float = 30.0,
) -> None:
    """Runs a worker until it stops by itself; restarts it, with backoff, when it fails. A
    run that lasted `healthy_after` seconds was healthy: the next failure starts the backoff
    afresh instead of waiting as long as after a string of quick failures."""
    backoff = first_backoff
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        try:
            await worker.run()
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if loop.time() - started >= healthy_after:
                backoff = first_backoff
            WORKER_RESTARTS.labels(worker.name).inc()
            log.warning(
                "%s failed (%s); restarting in %.1fs", worker.name, type(error).__name__, backoff
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
