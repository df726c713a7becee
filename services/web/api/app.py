from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from services.web.api.deps import CsrfRefused, NotAllowed, SignInNeeded
from services.web.api.pages import STATIC, redirect, render
from services.web.api.routers import (
    campaigns,
    charts,
    console,
    console_auth,
    dead_letters,
    engagement_rules,
    health,
    home,
    members,
    partners,
    rewards,
    segments,
    settlement,
    staff_accounts,
    wallet,
    wallet_auth,
    wallet_cards,
    wallet_history,
    wallet_preferences,
    wallet_receipt,
    wallet_rewards,
)
from services.web.bootstrap import SERVICE, WebRuntime, bootstrap
from services.web.ports import ServiceUnavailable
from shared.runtime.process import Runtime
from shared.settings import ServiceSettings
from shared.web.http import create_service_app


def create_app(settings: ServiceSettings) -> FastAPI:
    app = create_service_app(
        name=SERVICE,
        settings=settings,
        bootstrap=bootstrap,
        routers=[
            home.router,
            console_auth.router,
            console.router,
            charts.router,
            members.router,
            health.router,
            staff_accounts.router,
            wallet_auth.router,
            wallet.router,
            wallet_rewards.router,
            wallet_cards.router,
            wallet_history.router,
            wallet_preferences.router,
            wallet_receipt.router,
            campaigns.router,
            rewards.router,
            engagement_rules.router,
            segments.router,
            partners.router,
            settlement.router,
            dead_letters.router,
        ],
        on_start=_keep_services,
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _page_errors(app)
    return app


def _keep_services(app: FastAPI, runtime: Runtime) -> None:
    assert isinstance(runtime, WebRuntime)
    app.state.services = runtime.services


def _page_errors(app: FastAPI) -> None:
    async def sign_in(request: Request, error: Exception) -> Response:
        assert isinstance(error, SignInNeeded)
        return redirect(error.sign_in_url)

    async def refused(request: Request, error: Exception) -> HTMLResponse:
        key = "error.csrf" if isinstance(error, CsrfRefused) else "error.title"
        return render(request, "error.html", {"message_key": key, "service": ""}, status_code=403)

    async def unavailable(request: Request, error: Exception) -> HTMLResponse:
        assert isinstance(error, ServiceUnavailable)
        context = {"message_key": "error.unavailable", "service": error.service}
        return render(request, "error.html", context, status_code=503)

    app.add_exception_handler(SignInNeeded, sign_in)
    app.add_exception_handler(CsrfRefused, refused)
    app.add_exception_handler(NotAllowed, refused)
    app.add_exception_handler(ServiceUnavailable, unavailable)


__all__ = ["RedirectResponse", "create_app"]
