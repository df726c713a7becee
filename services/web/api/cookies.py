"""The one way the web sets its cookies: a sign-in form's token before there is a session (in
a cookie and the form, compared on the post), the session's cookie once signed in, and its end.
Every cookie is HttpOnly and `Secure` unless the settings say the web runs over plain http."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from services.web.api.pages import PRE_SESSION_CSRF_COOKIE, new_form_token, redirect, render
from services.web.domain.model import SessionPolicy
from services.web.settings import WebSettings


def sign_in_page(
    request: Request,
    settings: WebSettings,
    template: str,
    context: dict[str, Any],
    *,
    form_path: str,
    status_code: int = 200,
) -> HTMLResponse:
    """A sign-in page whose form carries a fresh token, also set in a cookie for `form_path`
    (where the form posts) and nowhere else."""
    token = new_form_token()
    response = render(request, template, context, status_code=status_code, csrf_token=token)
    response.set_cookie(
        PRE_SESSION_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
        path=form_path,
    )
    return response


def signed_in(
    to: str,
    *,
    cookie: str,
    token: str,
    samesite: Literal["strict", "lax"],
    settings: WebSettings,
    policy: SessionPolicy,
    form_path: str,
) -> RedirectResponse:
    """To the first page, with the session's cookie; the sign-in form's token is done with."""
    response = redirect(to)
    response.set_cookie(
        cookie,
        token,
        httponly=True,
        samesite=samesite,
        secure=settings.cookie_secure,
        path="/",
        max_age=int(policy.longest.total_seconds()),
    )
    response.delete_cookie(PRE_SESSION_CSRF_COOKIE, path=form_path)
    return response


def signed_out(to: str, *, cookie: str) -> RedirectResponse:
    response = redirect(to)
    response.delete_cookie(cookie, path="/")
    return response
