"""The app factory every service uses, with its lifespan, probes and metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import Scope as TokenScope
from shared.auth import bearer_token, token_scope
from shared.body_limit import BodyLimit
from shared.clock import Clock
from shared.logs import configure_logging
from shared.metrics import HTTP_REQUEST_SECONDS as REQUEST_SECONDS
from shared.openapi import install_openapi
from shared.problems import Problem, install_problem_handlers, problem_response
from shared.runtime import RunningWorkers, Runtime
from shared.settings import ServiceSettings
from shared.tracing import configure_tracing, serving, shutdown_tracing

log = logging.getLogger(__name__)

# How long a client is asked to wait before retrying while the database is away.
DATABASE_RETRY_AFTER_SECONDS = 1


def create_service_app(
    *,
    name: str,
    settings: ServiceSettings,
    bootstrap: Callable[[ServiceSettings], Awaitable[Runtime]],
    routers: Sequence[APIRouter],
    version: str = "0.1.0",
    on_start: Callable[[FastAPI, Runtime], None] | None = None,
) -> FastAPI:
    """`on_start` puts what a service keeps beside its runtime (caches, batchers) on
    `app.state`, once the runtime exists."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(name, settings.log_level)
        configure_tracing(name)
        runtime = await bootstrap(settings)
        app.state.runtime = runtime
        if on_start is not None:
            on_start(app, runtime)
        workers = RunningWorkers(runtime.workers if settings.run_workers else [])
        try:
            yield
        finally:
            await workers.stop()
            await runtime.aclose()
            shutdown_tracing()

    app = FastAPI(title=f"Fedelta {name}", version=version, lifespan=lifespan)
    app.state.settings = settings
    install_problem_handlers(app)
    app.add_exception_handler(DBAPIError, _on_database_error)
    app.add_exception_handler(OSError, _on_database_error)
    # Inside the timer, so that a refused body is counted too; before any route reads it.
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestTimer, service=name)
    install_openapi(app)
    app.include_router(probes)
    from shared.jobs_api import jobs_router  # imported here: it depends on this module

    app.include_router(jobs_router)
    for router in routers:
        app.include_router(router)
    return app


class RequestTimer:
    """Feeds `fedelta_http_request_seconds` and carries the call's trace context (the
    caller's `traceparent` header continued, or a new trace: `shared.tracing.serving`). Plain
    ASGI: Starlette's BaseHTTPMiddleware runs every request in a task group with memory
    streams, which cost more than the request itself on a busy ingest."""

    def __init__(self, app: ASGIApp, service: str = "") -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app fails before it starts answering

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with serving(
            self.service,
            scope["method"],
            _traceparent(scope),
            record=scope["path"] not in _UNTRACED_PATHS,
        ) as span:
            try:
                await self.app(scope, receive, send_noting_status)
            finally:
                # The router records the matched route in this same scope.
                span.route = getattr(scope.get("route"), "path", "unmatched")
                span.status = status
                REQUEST_SECONDS.labels(scope["method"], span.route, str(status)).observe(
                    time.perf_counter() - started
                )


# Probes and scrapes, every few seconds: spans of them would drown the calls that matter.
_UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _traceparent(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"traceparent":
            value_bytes: bytes = value
            return value_bytes
    return None


def database_unavailable(error: BaseException) -> bool:
    """True when an error means the database cannot be reached right now (down, restarting,
    or a connection it dropped), rather than that a statement was wrong."""
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or isinstance(error.orig, OSError)
    return isinstance(error, OSError)


def database_unavailable_response() -> JSONResponse:
    return problem_response(
        503,
        "Unavailable",
        "the database cannot be reached right now: retry the same call (retries are safe)",
        slug="database-unavailable",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    if database_unavailable(exc):
        log.warning(
            "database unavailable on %s %s (%s)",
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        return database_unavailable_response()
    log.exception("unhandled database error on %s %s", request.method, request.url.path)
    return problem_response(
        500, "Internal error", "the request failed; it has been logged", slug="internal"
    )


# The dependencies below are coroutines although they do not wait for anything: FastAPI runs
# a plain `def` dependency on a worker thread, a hop that costs more than the function.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_settings(request: Request) -> ServiceSettings:
    settings: ServiceSettings = request.app.state.settings
    return settings


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]


async def get_clock(runtime: RuntimeDep) -> Clock:
    return runtime.clock


async def get_connection(runtime: RuntimeDep) -> AsyncIterator[AsyncConnection]:
    """A connection for reads. A call that changes state opens its own transaction
    (`async with runtime.engine.begin()`) and commits it before it answers, so that what
    the client is told was accepted is already durable."""
    async with runtime.engine.connect() as conn:
        yield conn


ClockDep = Annotated[Clock, Depends(get_clock)]
ConnectionDep = Annotated[AsyncConnection, Depends(get_connection)]


def require_scope(needed: TokenScope) -> Callable[..., Awaitable[TokenScope]]:
    async def check(
        settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
    ) -> TokenScope:
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


ReadScope = Annotated[TokenScope, Depends(require_scope("read"))]
AdminScope = Annotated[TokenScope, Depends(require_scope("admin"))]

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
