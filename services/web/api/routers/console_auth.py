"""Staff sign-in and sign-out: the form (its CSRF token in a cookie and a field, there being no
session yet), the session cookie (HttpOnly, SameSite=Strict, Secure unless the local stack
says otherwise)."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.web.api.cookies import sign_in_page, signed_in, signed_out
from services.web.api.deps import (
    STAFF_COOKIE,
    ClockDep,
    CsrfField,
    PolicyDep,
    RuntimeDep,
    StaffDep,
    WebSettingsDep,
    check_csrf,
)
from services.web.api.pages import PRE_SESSION_CSRF_COOKIE
from services.web.api.schemas import Password, Username
from services.web.usecases import sessions, staff
from services.web.usecases.staff import Refused

router = APIRouter(prefix="/console", include_in_schema=False)


FORM_PATH = "/console/sign-in"


@router.get("/sign-in")
async def sign_in_form(request: Request, settings: WebSettingsDep) -> HTMLResponse:
    return _form(request, settings, error=None, status_code=200)


def _form(
    request: Request, settings: WebSettingsDep, *, error: str | None, status_code: int
) -> HTMLResponse:
    return sign_in_page(
        request,
        settings,
        "console/sign_in.html",
        {"error": error},
        form_path=FORM_PATH,
        status_code=status_code,
    )


@router.post("/sign-in")
async def sign_in(
    request: Request,
    username: Username,
    password: Password,
    csrf: CsrfField,
    runtime: RuntimeDep,
    clock: ClockDep,
    policy: PolicyDep,
    settings: WebSettingsDep,
) -> Response:
    check_csrf(csrf, request.cookies.get(PRE_SESSION_CSRF_COOKIE, ""))
    client = request.client.host if request.client else "unknown"
    outcome = await staff.sign_in_staff(
        runtime.engine,
        clock,
        policy,
        username=username.strip().lower(),
        password=password,
        client=client,
    )
    if isinstance(outcome, Refused):
        error = "console.sign_in.locked" if outcome.locked else "console.sign_in.refused"
        return _form(request, settings, error=error, status_code=429 if outcome.locked else 401)
    return signed_in(
        "/console",
        cookie=STAFF_COOKIE,
        token=outcome.token,
        samesite="strict",  # staff never arrive from another site's link
        settings=settings,
        policy=policy,
        form_path=FORM_PATH,
    )


@router.post("/sign-out")
async def sign_out(
    request: Request, who: StaffDep, csrf: CsrfField, runtime: RuntimeDep
) -> RedirectResponse:
    check_csrf(csrf, who.csrf_token)
    await sessions.end_session(runtime.engine, request.cookies.get(STAFF_COOKIE))
    return signed_out("/console/sign-in", cookie=STAFF_COOKIE)
