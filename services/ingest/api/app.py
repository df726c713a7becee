from fastapi import FastAPI

from services.ingest.api.replies import install_rule_violation_handler
from services.ingest.api.routers import customers, partners, purchases
from services.ingest.bootstrap import SERVICE, bootstrap
from shared.http import create_service_app
from shared.settings import ServiceSettings


def create_app(settings: ServiceSettings) -> FastAPI:
    app = create_service_app(
        name=SERVICE,
        settings=settings,
        bootstrap=bootstrap,
        routers=[customers.router, purchases.router, partners.router],
    )
    install_rule_violation_handler(app)
    return app
