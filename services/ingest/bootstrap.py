"""Wires the ingest service: the one place that builds engines, clients and workers."""

from __future__ import annotations

from services.ingest.adapters import tables
from services.ingest.settings import IngestSettings
from shared.clock import Clock, SystemClock
from shared.db import create_engine
from shared.kafka import ResilientProducer
from shared.outbox import OutboxRelay
from shared.runtime import Runtime
from shared.settings import ServiceSettings

SERVICE = "ingest"


async def bootstrap(settings: ServiceSettings, clock: Clock | None = None) -> Runtime:
    assert isinstance(settings, IngestSettings)
    clock = clock or SystemClock()
    engine = create_engine(settings.database_url)
    producer = ResilientProducer(settings.kafka_bootstrap_servers, client_id=f"fedelta-{SERVICE}")
    relay = OutboxRelay(engine, tables.outbox, producer, settings.outbox_poll_interval_seconds)
    # Ingest consumes nothing: its only worker publishes what the API wrote to the outbox,
    # so a POS keeps being answered while Kafka is away.
    return Runtime(
        engine=engine,
        clock=clock,
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        producer=producer,
        relay=relay,
        workers=[relay],
    )
