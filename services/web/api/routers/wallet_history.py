"""The member's points history, a page at a time."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from services.web.api.deps import MemberDep, ServicesDep
from services.web.api.pages import render
from services.web.usecases.wallet_history import history_page

router = APIRouter(prefix="/wallet", include_in_schema=False)

# Points' ledger cursor: a sequence number.
Cursor = Annotated[str | None, Query(max_length=19, pattern=r"^[0-9]{1,19}$")]


@router.get("/history")
async def history(
    request: Request, who: MemberDep, services: ServicesDep, cursor: Cursor = None
) -> HTMLResponse:
    page = await history_page(services, who.actor, who.customer_id, cursor)
    context = {"member": who, "page": page}
    return render(request, "wallet/history.html", context, csrf_token=who.csrf_token)
