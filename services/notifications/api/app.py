from fastapi import FastAPI

from services.notifications.api.routers import (
    contacts,
    customers,
    partners,
    preferences,
    templates,
    unsubscribe,
)
from services.notifications.bootstrap import SERVICE, bootstrap
from shared.settings import ServiceSettings
from shared.web.http import create_service_app


def create_app(settings: ServiceSettings) -> FastAPI:
    return create_service_app(
        name=SERVICE,
        settings=settings,
        bootstrap=bootstrap,
        routers=[
            contacts.router,
            customers.router,
            partners.router,
            preferences.router,
            templates.router,
            unsubscribe.router,
        ],
    )
