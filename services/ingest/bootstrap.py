"""Wires the ingest service: the one place that builds engines, clients and workers."""

from __future__ import annotations

import logging
from datetime import timedelta

from services.ingest import ports
from services.ingest.adapters import tables
from services.ingest.adapters.points_gateway import HttpPointsGateway
from services.ingest.adapters.quiet_partitions import QuietPartitionWriter
from services.ingest.adapters.repositories.partner_directory import PartnerDirectory
from services.ingest.adapters.repositories.till_signatures import SqlTillSignatures
from services.ingest.adapters.sealed_secrets import use_keyring
from services.ingest.domain.rate_limits import PartnerRateLimits
from services.ingest.domain.till_replays import remembered_for
from services.ingest.settings import IngestSettings
from services.ingest.usecases.purchase_groups import PurchaseGroups
from shared.clock import Clock, SystemClock
from shared.runtime.process import Runtime, service_runtime
from shared.settings import ServiceSettings
from shared.storage.retention import PurgeOlderThan, purge_idempotency_keys

SERVICE = "ingest"
PURGE_TILL_SIGNATURES = "purge-till-signatures"


async def bootstrap(settings: ServiceSettings, clock: Clock | None = None) -> Runtime:
    assert isinstance(settings, IngestSettings)
    # httpx logs every request line at INFO (httpcore its steps at DEBUG): a till call's URL
    # may hold a coupon code, and logs carry ids and error classes only.
    for library in ("httpx", "httpcore"):
        logging.getLogger(library).setLevel(logging.WARNING)
    use_keyring(settings.keyring())  # partners' signing secrets are stored sealed
    # Ingest consumes nothing: its workers publish what the API wrote to the outbox (so a
    # POS keeps being answered while Kafka is away) and purge the kept idempotency keys and
    # the till signatures no instance could accept any more.
    runtime = service_runtime(
        SERVICE,
        settings,
        clock or SystemClock(),
        outbox=tables.outbox,
        jobs=[
            purge_idempotency_keys(
                tables.idempotency_keys, timedelta(days=settings.retention_days)
            ),
            PurgeOlderThan(
                PURGE_TILL_SIGNATURES,
                tables.till_signatures,
                "signed_at",
                remembered_for(settings.max_clock_skew_seconds),
            ),
        ],
    )
    # Rolls a quiet partition of the customers topic and its dead letters: the erasure
    # deadline holds on every partition (adapters/quiet_partitions.py).
    runtime.workers.append(
        QuietPartitionWriter(runtime.producer, settings.quiet_partition_write_seconds)
    )
    return runtime


def partner_directory(runtime: Runtime, settings: IngestSettings) -> ports.PartnerDirectory:
    """How the API finds the partner of a POS call: cached for a few seconds per process."""
    return PartnerDirectory(
        runtime.engine,
        runtime.clock,
        timedelta(seconds=settings.partner_cache_seconds),
        unknown_ttl=timedelta(seconds=settings.unknown_key_cache_seconds),
        unknown_lookups_per_second=settings.unknown_key_lookups_per_second,
    )


def purchase_groups(runtime: Runtime, settings: IngestSettings) -> PurchaseGroups:
    """The group commit of `POST /v1/purchases`, waking the relay once a group committed."""
    return PurchaseGroups(
        runtime.engine,
        runtime.clock,
        max_size=settings.purchase_group_max,
        after_commit=runtime.relay.notify,
    )


def points_gateway(settings: IngestSettings) -> HttpPointsGateway | None:
    """Points' API for the till calls, with the till token; None without one (the till calls
    then answer 503 till-not-configured). Closed with the app (`api/app.py`)."""
    if settings.points_token is None:
        return None
    return HttpPointsGateway(
        settings.points_url,
        settings.points_token.get_secret_value(),
        connect_timeout_seconds=settings.points_connect_timeout_seconds,
        timeout_seconds=settings.points_timeout_seconds,
        connections=settings.points_connections,
    )


def till_signatures(runtime: Runtime) -> ports.TillSignatures:
    """The signed till calls that spent or reserved points, in ingest's database (shared by
    every instance): a signed call is never sent to points again under another key."""
    return SqlTillSignatures(runtime.engine)


def rate_limits(settings: IngestSettings) -> PartnerRateLimits:
    """This worker process's buckets of the partners' rate limits: its share of each limit."""
    return PartnerRateLimits(settings.partner_rate_limit_per_second, settings.workers)
