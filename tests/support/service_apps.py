"""Each service's real app, built in-process with settings that need no environment (no
lifespan runs: routes that need the runtime are not for these tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from services.engagement.api.app import create_app as engagement_app
from services.ingest.api.app import create_app as ingest_app
from services.insights.api.app import create_app as insights_app
from services.notifications.api.app import create_app as notifications_app
from services.points.api.app import create_app as points_app
from services.tiers.api.app import create_app as tiers_app
from services.web.api.app import create_app as web_app
from shared.settings import ServiceSettings
from shared.web.deps import (
    AdminCredential,
    AdminOrTillCaller,
    AdminScope,
    Caller,
    OperateScope,
    ReadOrTillCaller,
    ReadScope,
)
from shared.web.problems import install_problem_handlers
from tests.support.service_settings import SETTINGS_CLASSES
from tests.support.stack import CONSOLE_SERVICES, CONSOLE_TOKEN, RECEIPT_SECRET, sha256_hex

CREATE_APPS: dict[str, Callable[[ServiceSettings], FastAPI]] = {
    "ingest": ingest_app,
    "points": points_app,
    "tiers": tiers_app,
    "notifications": notifications_app,
    "engagement": engagement_app,
    "insights": insights_app,
    "web": web_app,
}
ADMIN_TOKEN = "service-apps-admin-token-0123456789"
# What a service requires beyond the settings every service does.
REQUIRED_OF: dict[str, dict[str, Any]] = {
    "engagement": {"surprise_secret": "service-apps-surprise-secret-0123456789"},
    # The web: its console credential at each service and the receipts' secret.
    "web": {
        "receipt_secret": RECEIPT_SECRET,
        **{f"{service}_token": CONSOLE_TOKEN for service in CONSOLE_SERVICES},
    },
}


def service_settings(service: str, **overrides: Any) -> ServiceSettings:
    settings = SETTINGS_CLASSES[service](
        database_url=f"postgresql+asyncpg://u:p@localhost:5432/{service}",
        kafka_bootstrap_servers="localhost:9092",
        admin_token_sha256=sha256_hex(ADMIN_TOKEN),
        **{**REQUIRED_OF.get(service, {}), **overrides},
    )
    assert isinstance(settings, ServiceSettings)
    return settings


def service_app(service: str, **overrides: Any) -> FastAPI:
    return CREATE_APPS[service](service_settings(service, **overrides))


@asynccontextmanager
async def client_of(app: FastAPI, port: int = 8080) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose calls arrive on `port` (the ASGI scope's `server`, as a socket's)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://svc:{port}") as client:
        yield client


def credential_probe(service_settings: ServiceSettings) -> FastAPI:
    """An app of one route per credential dependency (shared.web.deps), each answering what the
    dependency let through: what the credential tests call instead of a service's routes
    (`/balance` takes a read or till token, `/adjustments` an admin or till one)."""
    app = FastAPI()
    install_problem_handlers(app)
    app.state.settings = service_settings

    @app.get("/read")
    async def read(scope: ReadScope) -> dict[str, Any]:
        return {"scope": scope}

    @app.post("/operate")
    async def operate(scope: OperateScope) -> dict[str, Any]:
        return {"scope": scope}

    @app.post("/admin")
    async def admin(scope: AdminScope) -> dict[str, Any]:
        return {"scope": scope}

    @app.post("/adjust")
    async def adjust(credential: AdminCredential) -> dict[str, Any]:
        return {"scope": credential.scope, "actor": credential.actor}

    @app.get("/balance")
    async def balance(caller: ReadOrTillCaller) -> dict[str, Any]:
        return _shown(caller)

    @app.get("/adjustments")
    async def adjustments(caller: AdminOrTillCaller) -> dict[str, Any]:
        return _shown(caller)

    return app


def _shown(caller: Caller) -> dict[str, Any]:
    return {
        "scope": caller.scope,
        "actor": caller.actor,
        "partner": caller.partner_id,
        "store": caller.store_id,
    }
