"""The app factory every service uses, with its lifespan, probes and metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.auth import Scope, bearer_token, token_scope
from shared.clock import Clock
from shared.logs import configure_logging
from shared.problems import Problem, install_problem_handlers, problem_response
from shared.runtime import RunningWorkers, Runtime
from shared.settings import ServiceSettings

REQUEST_SECONDS = Histogram(
    "fedelta_http_request_seconds",
    "HTTP requests by route and status",
    ["method", "route", "status"],
)


def create_service_app(
    *,
    name: str,
    settings: ServiceSettings,
    bootstrap: Callable[[ServiceSettings], Awaitable[Runtime]],
    routers: Sequence[APIRouter],
    version: str = "0.1.0",
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(name, settings.log_level)
        runtime = await bootstrap(settings)
        app.state.runtime = runtime
        workers = RunningWorkers(runtime.workers if settings.run_workers else [])
        try:
            yield
        finally:
            await workers.stop()
            await runtime.aclose()

    app = FastAPI(title=f"Fedelta {name}", version=version, lifespan=lifespan)
    app.state.settings = settings
    install_problem_handlers(app)
    app.middleware("http")(_timed)
    app.include_router(probes)
    for router in routers:
        app.include_router(router)
    return app


async def _timed(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    started = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    REQUEST_SECONDS.labels(
        request.method, getattr(route, "path", "unmatched"), str(response.status_code)
    ).observe(time.perf_counter() - started)
    return response


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_settings(request: Request) -> ServiceSettings:
    settings: ServiceSettings = request.app.state.settings
    return settings


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]


def get_clock(runtime: RuntimeDep) -> Clock:
    return runtime.clock


async def get_connection(runtime: RuntimeDep) -> AsyncIterator[AsyncConnection]:
    """A connection for reads. A call that changes state opens its own transaction
    (`async with runtime.engine.begin()`) and commits it before it answers, so that what
    the client is told was accepted is already durable."""
    async with runtime.engine.connect() as conn:
        yield conn


ClockDep = Annotated[Clock, Depends(get_clock)]
ConnectionDep = Annotated[AsyncConnection, Depends(get_connection)]


def require_scope(needed: Scope) -> Callable[..., Scope]:
    def check(
        settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
    ) -> Scope:
        token = bearer_token(authorization)
        if token is None:
            raise Problem(
                401,
                "Unauthorized",
                "send Authorization: Bearer <service token>",
                slug="unauthorized",
            )
        scope = token_scope(token, settings.admin_token, settings.read_token)
        if scope is None:
            raise Problem(401, "Unauthorized", "unknown service token", slug="unauthorized")
        if needed == "admin" and scope != "admin":
            raise Problem(403, "Forbidden", "this call needs the admin scope", slug="forbidden")
        return scope

    return check


ReadScope = Annotated[Scope, Depends(require_scope("read"))]
AdminScope = Annotated[Scope, Depends(require_scope("admin"))]

probes = APIRouter(tags=["probes"])


@probes.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@probes.get("/readyz", response_model=None)
async def readyz(runtime: RuntimeDep) -> Any:
    checks = {
        "database": await _database_ok(runtime),
        "kafka": await _kafka_ok(runtime.kafka_bootstrap_servers),
    }
    if all(checks.values()):
        return {"status": "ready", "checks": checks}
    failing = ", ".join(name for name, ok in checks.items() if not ok)
    return problem_response(
        503, "Not ready", f"unreachable: {failing}", slug="not-ready", checks=checks
    )


@probes.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _database_ok(runtime: Runtime) -> bool:
    try:
        async with asyncio.timeout(2):
            async with runtime.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        return True
    except Exception:
        return False


async def _kafka_ok(bootstrap_servers: str) -> bool:
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            async with asyncio.timeout(2):
                _, writer = await asyncio.open_connection(host, int(port))
            writer.close()
            await writer.wait_closed()
            return True
        except (OSError, TimeoutError):
            continue
    return False
