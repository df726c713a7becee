"""How a page is made: a Jinja2 template (autoescaped) in the request's language, with the
security headers of a page (a Content-Security-Policy that loads only the web's own assets, no
inline script or style), numbers and dates in the member's locale (Babel), and the CSRF token
of the form it holds."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.web.api.i18n import LANG_COOKIE, LOCALES, locale_of, translate

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"

# Only the web's own files; forms post back to it; never framed; no base tag games. Images
# may be data: URIs (the coupon's QR code is an inline SVG image).
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}
# Before a session exists (a sign-in form): a random token in a cookie and in the form, equal.
PRE_SESSION_CSRF_COOKIE = "fedelta_csrf"

environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def locale_for(request: Request) -> str:
    return locale_of(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
    )


def _formatters(locale: str) -> dict[str, Any]:
    def number(value: Decimal | int | str) -> str:
        return format_decimal(Decimal(str(value)), locale=locale)

    def money(value: Decimal | str) -> str:
        return format_decimal(Decimal(str(value)), format="#,##0.00", locale=locale)

    def day(value: datetime | str) -> str:
        instant = datetime.fromisoformat(value) if isinstance(value, str) else value
        return format_date(instant, format="medium", locale=locale)

    def moment(value: datetime | str) -> str:
        instant = datetime.fromisoformat(value) if isinstance(value, str) else value
        return format_datetime(instant, format="medium", locale=locale)

    return {"number": number, "money": money, "day": day, "moment": moment}


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    csrf_token: str | None = None,
) -> HTMLResponse:
    locale = locale_for(request)

    def t(key: str, **values: object) -> str:
        return translate(locale, key, **values)

    values = {
        "request": request,
        "t": t,
        "locale": locale,
        "locales": LOCALES,
        "csrf_token": csrf_token or "",
        **_formatters(locale),
        **(context or {}),
    }
    html = environment.get_template(template).render(values)
    response = HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)
    if request.query_params.get("lang") in LOCALES:
        response.set_cookie(LANG_COOKIE, locale, max_age=365 * 86400, samesite="lax")
    return response


def redirect(url: str) -> RedirectResponse:
    """After a form: 303 See Other, so that a reload does not post it again."""
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def same_token(given: str | None, expected: str | None) -> bool:
    return bool(given and expected) and hmac.compare_digest(str(given), str(expected))


def new_form_token() -> str:
    return secrets.token_urlsafe(24)
