"""Wires the ingest service: the one place that builds engines, clients and workers."""

from __future__ import annotations

from datetime import timedelta

from services.ingest import ports
from services.ingest.adapters import tables
from services.ingest.adapters.repositories.partner_directory import PartnerDirectory
from services.ingest.settings import IngestSettings
from services.ingest.usecases.purchase_groups import PurchaseGroups
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


def partner_directory(runtime: Runtime, settings: IngestSettings) -> ports.PartnerDirectory:
    """How the API finds the partner of a POS call: cached for a few seconds per process."""
    return PartnerDirectory(
        runtime.engine, runtime.clock, timedelta(seconds=settings.partner_cache_seconds)
    )


def purchase_groups(runtime: Runtime, settings: IngestSettings) -> PurchaseGroups:
    """The group commit of `POST /v1/purchases`, waking the relay once a group committed."""
    return PurchaseGroups(
        runtime.engine,
        runtime.clock,
        max_size=settings.purchase_group_max,
        after_commit=runtime.relay.notify,
    )
