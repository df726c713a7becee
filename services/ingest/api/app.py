from datetime import timedelta

from fastapi import FastAPI

from services.ingest.adapters.partner_directory import PartnerDirectory
from services.ingest.api.purchase_groups import PurchaseGroups
from services.ingest.api.replies import install_rule_violation_handler
from services.ingest.api.routers import customers, partners, purchases
from services.ingest.bootstrap import SERVICE, bootstrap
from services.ingest.settings import IngestSettings, load_settings
from shared.runtime.process import Runtime
from shared.settings import ServiceSettings
from shared.web.http import create_service_app


def create_app(settings: ServiceSettings) -> FastAPI:
    assert isinstance(settings, IngestSettings)

    def on_start(app: FastAPI, runtime: Runtime) -> None:
        app.state.partners = PartnerDirectory(
            runtime.engine, runtime.clock, timedelta(seconds=settings.partner_cache_seconds)
        )
        app.state.purchase_groups = PurchaseGroups(
            runtime.engine,
            runtime.clock,
            max_size=settings.purchase_group_max,
            after_commit=runtime.relay.notify,
        )

    app = create_service_app(
        name=SERVICE,
        settings=settings,
        bootstrap=bootstrap,
        routers=[customers.router, purchases.router, partners.router],
        on_start=on_start,
    )
    install_rule_violation_handler(app)
    return app


def create_app_from_environment() -> FastAPI:
    """What each uvicorn worker process calls (`serve` with several workers)."""
    return create_app(load_settings())
