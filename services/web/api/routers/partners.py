"""Partners in the console (admin only): the list, a new partner, a key rotated, a partner
revoked. The page answering a create or a rotation shows the key and secret once; it is never
a redirect (that would put them in a URL or keep them somewhere to show later)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.web.api.deps import AdminStaffDep, CsrfField, ServicesDep, Staff, check_csrf
from services.web.api.pages import redirect
from services.web.api.routers.campaigns import DoneQuery, FormKey, RuleId, form_fields, program_page
from services.web.usecases import partners
from services.web.usecases.campaigns import Outcome

router = APIRouter(prefix="/console/partners", include_in_schema=False)
TEMPLATE = "console/partners.html"


async def _page(
    request: Request,
    who: Staff,
    services: ServicesDep,
    *,
    outcome: Outcome | None = None,
    credentials: partners.Credentials | None = None,
    done: str | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    listing = await partners.list_partners(services, who.actor)
    context = {"listing": listing, "credentials": credentials}
    return program_page(request, who, TEMPLATE, context, outcome=outcome, done=done, form=form)


@router.get("")
async def partners_page(
    request: Request, who: AdminStaffDep, services: ServicesDep, done: DoneQuery = None
) -> HTMLResponse:
    return await _page(request, who, services, done=done)


@router.post("")
async def create_partner(
    request: Request, who: AdminStaffDep, services: ServicesDep, csrf: CsrfField, key: FormKey
) -> Response:
    check_csrf(csrf, who.csrf_token)
    form, _ = await form_fields(request)
    outcome, credentials = await partners.create_partner(services, who.actor, form, key)
    shown = form if not outcome.ok else None
    return await _page(request, who, services, outcome=outcome, credentials=credentials, form=shown)


@router.post("/{partner_id}/rotate-key")
async def rotate_key(
    request: Request, partner_id: RuleId, who: AdminStaffDep, services: ServicesDep, csrf: CsrfField
) -> Response:
    check_csrf(csrf, who.csrf_token)
    outcome, credentials = await partners.rotate_key(services, who.actor, partner_id)
    return await _page(request, who, services, outcome=outcome, credentials=credentials)


@router.post("/{partner_id}/revoke")
async def revoke_partner(
    request: Request, partner_id: RuleId, who: AdminStaffDep, services: ServicesDep, csrf: CsrfField
) -> Response:
    check_csrf(csrf, who.csrf_token)
    outcome = await partners.revoke_partner(services, who.actor, partner_id)
    if outcome.ok:
        return redirect("/console/partners?done=program.done.revoked")
    return await _page(request, who, services, outcome=outcome)
