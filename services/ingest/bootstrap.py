"""Wires the ingest service: the one place that builds engines, clients and workers."""

from __future__ import annotations

from datetime import timedelta

from services.ingest.adapters import tables
from services.ingest.settings import IngestSettings
from shared.clock import Clock, SystemClock
from shared.runtime.process import Runtime, service_runtime
from shared.settings import ServiceSettings
from shared.storage.retention import purge_idempotency_keys

SERVICE = "ingest"


async def bootstrap(settings: ServiceSettings, clock: Clock | None = None) -> Runtime:
    assert isinstance(settings, IngestSettings)
    # Ingest consumes nothing: its workers publish what the API wrote to the outbox (so a
    # POS keeps being answered while Kafka is away) and purge the kept idempotency keys.
    return service_runtime(
        SERVICE,
        settings,
        clock or SystemClock(),
        outbox=tables.outbox,
        jobs=[
            purge_idempotency_keys(tables.idempotency_keys, timedelta(days=settings.retention_days))
        ],
    )
