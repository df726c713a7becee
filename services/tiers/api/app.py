from fastapi import FastAPI

from services.tiers.adapters.program_file import load_program
from services.tiers.api.routers import customers, tiers
from services.tiers.bootstrap import SERVICE, bootstrap
from services.tiers.settings import TiersSettings
from shared.http import create_service_app
from shared.runtime import Runtime
from shared.settings import ServiceSettings


def create_app(settings: ServiceSettings) -> FastAPI:
    assert isinstance(settings, TiersSettings)
    # Loaded once, here, so a malformed program stops the service before it serves anything,
    # and the API and the consumer apply the very same program.
    program = load_program(settings.program_file)

    async def start(settings: ServiceSettings) -> Runtime:
        return await bootstrap(settings, program=program)

    app = create_service_app(
        name=SERVICE, settings=settings, bootstrap=start, routers=[customers.router, tiers.router]
    )
    app.state.program = program
    return app
