"""Wires the web: the one place that builds the engine, the gateway to the other services and
the workers. The web consumes no event; its outbox relay idles (one skeleton for every
service)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from datetime import timedelta

import httpx
from sqlalchemy.exc import DBAPIError

from services.web.adapters import tables
from services.web.adapters.gateway import HttpServices
from services.web.settings import WebSettings
from services.web.usecases.staff import ensure_first_staff
from shared.clock import Clock, SystemClock
from shared.runtime.process import Runtime, service_runtime
from shared.settings import ServiceSettings
from shared.storage.retention import purge_idempotency_keys

SERVICE = "web"
log = logging.getLogger(__name__)


@dataclass
class WebRuntime(Runtime):
    """The common runtime and the pooled HTTP client the gateway calls the services with."""

    http: httpx.AsyncClient | None = None
    services: HttpServices | None = None

    async def aclose(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        await super().aclose()


async def bootstrap(settings: ServiceSettings, clock: Clock | None = None) -> Runtime:
    assert isinstance(settings, WebSettings)
    clock = clock or SystemClock()
    common = service_runtime(
        SERVICE,
        settings,
        clock,
        outbox=tables.outbox,
        jobs=[
            purge_idempotency_keys(
                tables.idempotency_keys, timedelta(days=settings.retention_days)
            ),
        ],
    )
    http = httpx.AsyncClient(limits=httpx.Limits(max_connections=50))
    runtime = WebRuntime(
        **{field.name: getattr(common, field.name) for field in fields(Runtime)},
        http=http,
        services=HttpServices(settings, http),
    )
    await _first_staff(runtime, settings, clock)
    return runtime


async def _first_staff(runtime: WebRuntime, settings: WebSettings, clock: Clock) -> None:
    password = settings.first_staff_password
    try:
        made = await ensure_first_staff(
            runtime.engine,
            clock,
            settings.first_staff_user,
            None if password is None else password.get_secret_value(),
        )
    except (DBAPIError, OSError) as error:
        # The database away at start: the account is made at the next start.
        log.warning("first staff account not checked", extra={"error": type(error).__name__})
        return
    if made:
        log.info("first staff account made", extra={"username": settings.first_staff_user})
