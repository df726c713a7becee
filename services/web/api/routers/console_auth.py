"""Staff sign-in and sign-out: the form (its CSRF token in a cookie and a field, there being no
session yet), the session cookie (HttpOnly, SameSite=Strict, Secure unless the local stack
says otherwise)."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

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
from services.web.api.pages import (
    PRE_SESSION_CSRF_COOKIE,
    new_form_token,
    redirect,
    render,
)
from services.web.api.schemas import Password, Username
from services.web.usecases import sessions, staff
from services.web.usecases.staff import Refused

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/sign-in")
async def sign_in_form(request: Request, settings: WebSettingsDep) -> HTMLResponse:
    return _form(request, settings, error=None, status_code=200)


def _form(
    request: Request, settings: WebSettingsDep, *, error: str | None, status_code: int
) -> HTMLResponse:
    token = new_form_token()
    response = render(
        request,
        "console/sign_in.html",
        {"error": error},
        status_code=status_code,
        csrf_token=token,
    )
    response.set_cookie(
        PRE_SESSION_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
        path="/console/sign-in",
    )
    return response


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
    response = redirect("/console")
    response.set_cookie(
        STAFF_COOKIE,
        outcome.token,
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
        path="/",
        max_age=int(policy.longest.total_seconds()),
    )
    response.delete_cookie(PRE_SESSION_CSRF_COOKIE, path="/console/sign-in")
    return response


@router.post("/sign-out")
async def sign_out(
    request: Request, who: StaffDep, csrf: CsrfField, runtime: RuntimeDep
) -> RedirectResponse:
    check_csrf(csrf, who.csrf_token)
    await sessions.end_session(runtime.engine, request.cookies.get(STAFF_COOKIE))
    response = redirect("/console/sign-in")
    response.delete_cookie(STAFF_COOKIE, path="/")
    return response
