"""Member sign-in: the email form, the one-time link (a page with a button: a mail scanner
that opens links does not use it up; the POST does), and sign-out. The session cookie is
HttpOnly and SameSite=Lax (a member comes back from links in their mail)."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.web.api.cookies import sign_in_page, signed_in, signed_out
from services.web.api.deps import (
    MEMBER_COOKIE,
    ClockDep,
    CsrfField,
    MemberDep,
    PolicyDep,
    RuntimeDep,
    ServicesDep,
    WebSettingsDep,
    check_csrf,
)
from services.web.api.pages import PRE_SESSION_CSRF_COOKIE, render
from services.web.api.schemas import SignInToken
from services.web.usecases import members, sessions
from services.web.usecases.sessions import SignedIn
from shared.bounds import Email

router = APIRouter(prefix="/wallet", include_in_schema=False)

PRE_SESSION_PATH = "/wallet/sign-in"


def with_form_token(
    request: Request, settings: WebSettingsDep, template: str, context: dict[str, object]
) -> HTMLResponse:
    """A sign-in page whose form carries a fresh token, also set in a cookie (no session yet)."""
    return sign_in_page(request, settings, template, context, form_path=PRE_SESSION_PATH)


@router.get("/sign-in")
async def sign_in_form(request: Request, settings: WebSettingsDep) -> HTMLResponse:
    return with_form_token(request, settings, "wallet/sign_in.html", {"sent": False})


@router.post("/sign-in")
async def send_link(
    request: Request,
    email: Annotated[Email, Form()],
    csrf: CsrfField,
    runtime: RuntimeDep,
    services: ServicesDep,
    clock: ClockDep,
    settings: WebSettingsDep,
) -> HTMLResponse:
    check_csrf(csrf, request.cookies.get(PRE_SESSION_CSRF_COOKIE, ""))
    await members.request_sign_in_link(
        runtime.engine, services, clock, email=email, public_url=settings.public_url
    )
    return with_form_token(request, settings, "wallet/sign_in.html", {"sent": True})


@router.get("/sign-in/{token}")
async def confirm_link(
    request: Request, token: SignInToken, settings: WebSettingsDep
) -> HTMLResponse:
    return with_form_token(request, settings, "wallet/sign_in_link.html", {"token": token})


@router.post("/sign-in/{token}")
async def use_link(
    request: Request,
    token: SignInToken,
    csrf: CsrfField,
    runtime: RuntimeDep,
    clock: ClockDep,
    policy: PolicyDep,
    settings: WebSettingsDep,
) -> Response:
    check_csrf(csrf, request.cookies.get(PRE_SESSION_CSRF_COOKIE, ""))
    session = await members.sign_in_with_link(runtime.engine, clock, policy, token)
    if session is None:
        return render(request, "wallet/sign_in_link.html", {"token": None}, status_code=410)
    return member_signed_in(session, settings, policy)


def member_signed_in(
    signed: SignedIn, settings: WebSettingsDep, policy: PolicyDep
) -> RedirectResponse:
    return signed_in(
        "/wallet",
        cookie=MEMBER_COOKIE,
        token=signed.token,
        samesite="lax",  # a member comes back from links in their mail
        settings=settings,
        policy=policy,
        form_path=PRE_SESSION_PATH,
    )


@router.post("/sign-out")
async def sign_out(
    request: Request, who: MemberDep, csrf: CsrfField, runtime: RuntimeDep
) -> RedirectResponse:
    check_csrf(csrf, who.csrf_token)
    await sessions.end_session(runtime.engine, request.cookies.get(MEMBER_COOKIE))
    return signed_out("/wallet/sign-in", cookie=MEMBER_COOKIE)
