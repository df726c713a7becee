from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from services.ingest.api.fast_purchases import PATH as PURCHASES_PATH
from services.ingest.api.fast_purchases import FastPurchaseRoute
from services.ingest.api.replies import (
    install_rule_violation_handler,
    install_till_failure_handler,
)
from services.ingest.api.routers import (
    customers,
    feedback,
    imports,
    partners,
    purchases,
    till,
)
from services.ingest.bootstrap import (
    SERVICE,
    bootstrap,
    partner_directory,
    points_gateway,
    purchase_groups,
    rate_limits,
    till_signatures,
)
from services.ingest.settings import IngestSettings, load_settings
from shared.runtime.process import Runtime
from shared.settings import ServiceSettings
from shared.web.http import create_service_app


def create_app(settings: ServiceSettings) -> FastAPI:
    assert isinstance(settings, IngestSettings)

    def on_start(app: FastAPI, runtime: Runtime) -> None:
        app.state.partners = partner_directory(runtime, settings)
        app.state.purchase_groups = purchase_groups(runtime, settings)
        app.state.points = points_gateway(settings)
        app.state.till_signatures = till_signatures(runtime)
        app.state.rate_limits = rate_limits(settings)

    app = create_service_app(
        name=SERVICE,
        settings=settings,
        bootstrap=bootstrap,
        routers=[
            customers.router,
            purchases.router,
            partners.router,
            till.router,
            imports.router,
            feedback.router,
        ],
        on_start=on_start,
        larger_bodies={imports.PATH: imports.MAX_BODY_BYTES},
    )
    _close_points_gateway_on_shutdown(app)
    install_rule_violation_handler(app)
    install_till_failure_handler(app)
    # The hot path first: a purchase in order skips FastAPI's per-request work; any other
    # call goes on to the documented route (services/ingest/api/fast_purchases.py).
    app.router.routes.insert(0, FastPurchaseRoute(app.router, _documented_purchase_route()))
    return app


def _close_points_gateway_on_shutdown(app: FastAPI) -> None:
    """The points gateway's connections are closed after the service's own lifespan ends."""
    service_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            async with service_lifespan(app):
                yield
        finally:
            gateway = getattr(app.state, "points", None)
            if gateway is not None:
                await gateway.aclose()

    app.router.lifespan_context = lifespan


def _documented_purchase_route() -> APIRoute:
    return next(
        route
        for route in purchases.router.routes
        if isinstance(route, APIRoute)
        and route.path == PURCHASES_PATH
        and "POST" in (route.methods or ())
    )


def create_app_from_environment() -> FastAPI:
    """What each uvicorn worker process calls (`serve` with several workers)."""
    return create_app(load_settings())
