from fastapi import FastAPI

from services.points.adapters.program_file import load_program
from services.points.api.routers import (
    adjustments,
    campaigns,
    coupons,
    customers,
    held,
    holds,
    redemptions,
    reports,
    rewards,
)
from services.points.bootstrap import SERVICE, bootstrap
from services.points.settings import PointsSettings
from shared.runtime.process import Runtime
from shared.settings import ServiceSettings
from shared.web.http import create_service_app


def create_app(settings: ServiceSettings) -> FastAPI:
    assert isinstance(settings, PointsSettings)
    # Loaded once, here, so a malformed program stops the service before it serves anything,
    # and the API, the consumer and the jobs apply the very same program.
    program = load_program(settings.program_file)

    async def start(settings: ServiceSettings) -> Runtime:
        return await bootstrap(settings, program=program)

    app = create_service_app(
        name=SERVICE,
        settings=settings,
        bootstrap=start,
        routers=[
            customers.router,
            campaigns.router,
            redemptions.router,
            holds.router,
            adjustments.router,
            held.router,
            reports.router,
            rewards.router,
            coupons.router,
        ],
    )
    app.state.program = program
    return app
