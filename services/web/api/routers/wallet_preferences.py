"""The member's message preferences (channels, quiet hours, time zone, language), unsubscribe
from the programme's emails, and their consent to email and SMS; each a form with the
session's CSRF token (the consent's with an Idempotency-Key rendered in it too)."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from services.web.api.deps import CsrfField, MemberDep, ServicesDep, check_csrf
from services.web.api.i18n import LOCALES
from services.web.api.pages import redirect, render
from services.web.api.routers.wallet import done_notice
from services.web.usecases.wallet_preferences import (
    Choice,
    preferences_page,
    save_consent,
    save_preferences,
    unsubscribe,
)

router = APIRouter(prefix="/wallet", include_in_schema=False)

Channel = Annotated[bool, Form()]
WallClock = Annotated[str, Form(max_length=5, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
TimeZone = Annotated[str, Form(max_length=64, pattern=r"^([A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*)?$")]
Language = Annotated[str, Form(max_length=2, pattern="^(" + "|".join(LOCALES) + ")?$")]
FormKey = Annotated[
    str, Form(alias="idempotency_key", min_length=16, max_length=64, pattern=r"^[A-Za-z0-9-]+$")
]
DONE = ("wallet.prefs.saved", "wallet.prefs.unsubscribed", "wallet.consent.saved")


@router.get("/preferences")
async def preferences(request: Request, who: MemberDep, services: ServicesDep) -> HTMLResponse:
    return await _page(request, who, services, error=None, status_code=200)


async def _page(
    request: Request, who: MemberDep, services: ServicesDep, *, error: str | None, status_code: int
) -> HTMLResponse:
    page = await preferences_page(services, who.actor, who.customer_id)
    context = {
        "member": who,
        "page": page,
        "error": error,
        "done": done_notice(request, DONE),
    }
    return render(
        request,
        "wallet/preferences.html",
        context,
        status_code=status_code,
        csrf_token=who.csrf_token,
    )


@router.post("/preferences")
async def save(
    request: Request,
    who: MemberDep,
    services: ServicesDep,
    csrf: CsrfField,
    quiet_start: WallClock,
    quiet_end: WallClock,
    email: Channel = False,
    sms: Channel = False,
    time_zone: TimeZone = "",
    language: Language = "",
) -> Response:
    check_csrf(csrf, who.csrf_token)
    choice = Choice(email, sms, quiet_start, quiet_end, time_zone or None, language or None)
    error = await save_preferences(services, who.actor, who.customer_id, choice)
    if error is not None:
        return await _page(request, who, services, error=error, status_code=422)
    return redirect("/wallet/preferences?done=wallet.prefs.saved")


@router.post("/unsubscribe")
async def unsubscribe_email(
    request: Request, who: MemberDep, services: ServicesDep, csrf: CsrfField
) -> Response:
    check_csrf(csrf, who.csrf_token)
    error = await unsubscribe(services, who.actor, who.customer_id)
    if error is not None:
        return await _page(request, who, services, error=error, status_code=422)
    return redirect("/wallet/preferences?done=wallet.prefs.unsubscribed")


@router.post("/consent")
async def consent(
    request: Request,
    who: MemberDep,
    services: ServicesDep,
    csrf: CsrfField,
    key: FormKey,
    consent_email: Channel = False,
    consent_sms: Channel = False,
) -> Response:
    check_csrf(csrf, who.csrf_token)
    error = await save_consent(
        services, who.actor, who.customer_id, email=consent_email, sms=consent_sms, key=key
    )
    if error is not None:
        return await _page(request, who, services, error=error, status_code=422)
    return redirect("/wallet/preferences?done=wallet.consent.saved")
