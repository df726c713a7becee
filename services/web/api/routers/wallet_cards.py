"""The member's stamp cards, challenges and badges."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.web.api.deps import MemberDep, ServicesDep
from services.web.api.pages import render
from services.web.usecases.wallet_cards import cards_page

router = APIRouter(prefix="/wallet", include_in_schema=False)


@router.get("/cards")
async def cards(request: Request, who: MemberDep, services: ServicesDep) -> HTMLResponse:
    page = await cards_page(services, who.actor, who.customer_id)
    context = {"member": who, "page": page}
    return render(request, "wallet/cards.html", context, csrf_token=who.csrf_token)
