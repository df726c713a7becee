"""The member wallet's home: balance, tier and progress, offers. Every wallet page shows the
signed-in member's own data only: the customer id comes from the session, never the request."""

from collections.abc import Collection

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.web.api.deps import MemberDep, ServicesDep
from services.web.api.pages import render
from services.web.usecases.wallet import wallet_home

router = APIRouter(prefix="/wallet", include_in_schema=False)


def done_notice(request: Request, known: Collection[str]) -> str | None:
    """The notice a page shows after a form (`?done=<message key>`), only one it knows."""
    done = request.query_params.get("done")
    return done if done in known else None


@router.get("")
async def wallet(request: Request, who: MemberDep, services: ServicesDep) -> HTMLResponse:
    home = await wallet_home(services, who.actor, who.customer_id)
    return render(
        request, "wallet/home.html", {"member": who, "home": home}, csrf_token=who.csrf_token
    )
