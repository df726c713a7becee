from fastapi import FastAPI

from services.tiers.api.routers import customers, tiers
from services.tiers.bootstrap import SERVICE, bootstrap, configured_programs
from services.tiers.settings import TiersSettings
from shared.runtime.process import Runtime
from shared.settings import ServiceSettings
from shared.web.http import create_service_app


def create_app(settings: ServiceSettings) -> FastAPI:
    assert isinstance(settings, TiersSettings)
    # Built once, here, so a malformed program file stops the service before it serves
    # anything, and the API, the consumer and the jobs follow the very same program in force.
    programs = configured_programs(settings)

    async def start(settings: ServiceSettings) -> Runtime:
        return await bootstrap(settings, programs=programs)

    app = create_service_app(
        name=SERVICE, settings=settings, bootstrap=start, routers=[customers.router, tiers.router]
    )
    app.state.programs = programs
    return app
