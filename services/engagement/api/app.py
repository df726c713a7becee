from fastapi import FastAPI

from services.engagement.api.routers import (
    birthdays,
    challenges,
    customers,
    feedback,
    stamp_cards,
    surprises,
)
from services.engagement.bootstrap import SERVICE, bootstrap
from shared.settings import ServiceSettings
from shared.web.http import create_service_app


def create_app(settings: ServiceSettings) -> FastAPI:
    return create_service_app(
        name=SERVICE,
        settings=settings,
        bootstrap=bootstrap,
        routers=[
            stamp_cards.router,
            challenges.router,
            customers.router,
            birthdays.router,
            surprises.router,
            feedback.router,
        ],
    )
