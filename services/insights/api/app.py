from fastapi import FastAPI

from services.insights.api.routers import customers, kpis, segments
from services.insights.bootstrap import SERVICE, bootstrap
from shared.settings import ServiceSettings
from shared.web.http import create_service_app


def create_app(settings: ServiceSettings) -> FastAPI:
    return create_service_app(
        name=SERVICE,
        settings=settings,
        bootstrap=bootstrap,
        routers=[customers.router, segments.router, kpis.router],
    )
