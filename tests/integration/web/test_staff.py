"""The console's own security on the test stack's PostgreSQL: sign-in with the form's CSRF
token, the session cookie's attributes, throttling by username and by client address, roles,
and an account disabled ending its sessions at once. Each test signs in from an address of its
own (the throttle counts per address too, and other tests' browsers sign in from 127.0.0.1)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from services.web.api.app import create_app
from services.web.settings import WebSettings
from tests.support.stack import STAFF_USER

pytestmark = pytest.mark.integration

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@asynccontextmanager
async def browser_at(settings: WebSettings, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the web's app from its own address, keeping cookies like a browser."""
    app: FastAPI = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://web") as client:
            yield client


def form_token(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found, "the page has a form with its CSRF token"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    form = await client.get("/console/sign-in")
    data = {"username": username, "password": password, "csrf_token": form_token(form)}
    return await client.post("/console/sign-in", data=data)


def staff_password(settings: WebSettings) -> str:
    """The first account's password: the stack's, shared with the web stack.sh starts."""
    assert settings.first_staff_password is not None
    return settings.first_staff_password.get_secret_value()


def new_address() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


async def test_staff_sign_in_with_the_forms_token_and_get_a_strict_session_cookie(
    settings: WebSettings,
) -> None:
    async with browser_at(settings, new_address()) as client:
        assert (await client.get("/console")).status_code == 303  # to the sign-in page
        signed = await sign_in(client, STAFF_USER, staff_password(settings))
        assert (signed.status_code, signed.headers["location"]) == (303, "/console")
        cookie = signed.headers["set-cookie"].lower()
        assert "fedelta_staff=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        dashboard = await client.get("/console/staff")
        assert dashboard.status_code == 200 and STAFF_USER in dashboard.text


async def test_a_sign_in_without_the_forms_token_is_refused(settings: WebSettings) -> None:
    async with browser_at(settings, new_address()) as client:
        data = {
            "username": STAFF_USER,
            "password": staff_password(settings),
            "csrf_token": "forged",
        }
        refused = await client.post("/console/sign-in", data=data)
        assert refused.status_code == 403
        assert "fedelta_staff" not in refused.headers.get("set-cookie", "")


async def test_five_wrong_passwords_lock_the_username_even_for_the_right_one(
    settings: WebSettings,
) -> None:
    username = await _new_account(settings, "viewer")
    async with browser_at(settings, new_address()) as client:
        for _ in range(5):
            wrong = await sign_in(client, username, "not the password at all")
            assert wrong.status_code in (401, 429)
        locked = await sign_in(client, username, "a-first-password-123")
        assert locked.status_code == 429
    async with browser_at(settings, new_address()) as elsewhere:
        assert (await sign_in(elsewhere, username, "a-first-password-123")).status_code == 429


async def test_a_viewer_is_refused_the_admins_pages_and_a_disabled_account_is_signed_out(
    settings: WebSettings,
) -> None:
    username = await _new_account(settings, "viewer")
    async with browser_at(settings, new_address()) as viewer:
        assert (await sign_in(viewer, username, "a-first-password-123")).status_code == 303
        assert (await viewer.get("/console/staff")).status_code == 403
        assert (await viewer.get("/console/members")).status_code == 200  # no service called
        async with browser_at(settings, new_address()) as admin:
            await sign_in(admin, STAFF_USER, staff_password(settings))
            page = await admin.get("/console/staff")
            disabled = await admin.post(
                f"/console/staff/{username}/disable", data={"csrf_token": form_token(page)}
            )
            assert disabled.status_code == 303
        assert (await viewer.get("/console/members")).status_code == 303  # its session ended
        assert (await sign_in(viewer, username, "a-first-password-123")).status_code == 401


async def test_an_account_is_refused_a_short_password_and_an_admin_cannot_disable_themself(
    settings: WebSettings,
) -> None:
    async with browser_at(settings, new_address()) as admin:
        await sign_in(admin, STAFF_USER, staff_password(settings))
        token = form_token(await admin.get("/console/staff"))
        data = {"username": "shorty", "role": "viewer", "password": "short", "csrf_token": token}
        short = await admin.post("/console/staff", data=data)
        assert short.status_code == 422 and "12" in short.text
        yourself = await admin.post(
            f"/console/staff/{STAFF_USER}/disable", data={"csrf_token": token}
        )
        assert yourself.status_code == 422


async def _new_account(settings: WebSettings, role: str) -> str:
    username = f"staff-{uuid.uuid4().hex[:12]}"
    async with browser_at(settings, new_address()) as admin:
        assert (await sign_in(admin, STAFF_USER, staff_password(settings))).status_code == 303
        token = form_token(await admin.get("/console/staff"))
        data = {
            "username": username,
            "role": role,
            "password": "a-first-password-123",
            "csrf_token": token,
        }
        made = await admin.post("/console/staff", data=data)
        assert made.status_code == 303, made.text
    return username
