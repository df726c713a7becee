"""The app factory every service uses, with its lifespan, probes and metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.observability.logs import configure_logging
from shared.observability.metrics import HTTP_REQUEST_SECONDS as REQUEST_SECONDS
from shared.observability.tracing import configure_tracing, serving, shutdown_tracing
from shared.runtime.memory import tune_garbage_collector
from shared.runtime.process import RunningWorkers, Runtime
from shared.settings import ServiceSettings
from shared.web.body_limit import BodyLimit
from shared.web.docs import docs_router
from shared.web.edge import ServiceApp
from shared.web.jobs_api import jobs_router
from shared.web.openapi import install_openapi
from shared.web.probes import probes
from shared.web.problems import install_problem_handlers, problem_response

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
    larger_bodies: Mapping[str, int] | None = None,
) -> FastAPI:
    """`on_start` puts what a service keeps beside its runtime (caches, batchers) on
    `app.state`, once the runtime exists; `larger_bodies` allows the named paths a body
    limit of their own (every other path keeps `settings.max_body_bytes`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(name, settings.log_level)
        configure_tracing(name)
        runtime = await bootstrap(settings)
        app.state.runtime = runtime
        if on_start is not None:
            on_start(app, runtime)
        tune_garbage_collector()
        workers = RunningWorkers(runtime.workers if settings.run_workers else [])
        try:
            yield
        finally:
            await workers.stop()
            await runtime.aclose()
            shutdown_tracing()

    app = ServiceApp(
        title=f"Fedelta {name}",
        version=version,
        lifespan=lifespan,
        # /docs is shared.web.docs' page, with its assets served here (no CDN); no /redoc.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        # FastAPI's own OpenTelemetry (off: spans are ours, `RequestTimer`, with a provider
        # that is never the global one); left on, it asks the global providers, through
        # os.environ, whether to start on every request (3 % of a busy ingest worker).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.internal_port = settings.internal_port
    install_problem_handlers(app)
    app.add_exception_handler(DBAPIError, _on_database_error)
    app.add_exception_handler(OSError, _on_database_error)
    # Inside the timer, so that a refused body is counted too; before any route reads it.
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes, larger=larger_bodies)
    app.add_middleware(RequestTimer, service=name)
    install_openapi(app)
    app.include_router(probes)
    app.include_router(docs_router)
    app.include_router(jobs_router)
    for router in routers:
        app.include_router(router)
    return app


class RequestTimer:
    """Feeds `fedelta_http_request_seconds` and carries the call's trace context (the
    caller's `traceparent` header continued, or a new trace:
    `shared.observability.tracing.serving`). Plain ASGI: Starlette's BaseHTTPMiddleware runs
    every request in a task group with memory streams, which cost more than the request itself
    on a busy ingest."""

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
