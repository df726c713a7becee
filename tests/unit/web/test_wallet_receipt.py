"""Sign-in from a receipt's QR link: a link ingest signed opens the member's session with the
emailed link's cookie; a forged, altered or expired one is a 410 page offering the emailed
link instead, and opens nothing."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi import FastAPI

from services.web.api import app as web_app
from services.web.api.deps import get_policy, get_web_settings
from services.web.api.routers import wallet_receipt
from services.web.domain.model import SessionPolicy
from services.web.ports import Session
from services.web.usecases import wallet_receipt as usecase
from services.web.usecases.sessions import SignedIn
from shared.clock import FixedClock
from shared.web.deps import get_clock, get_runtime
from shared.web.receipt_links import sign_receipt_link
from tests.support.web_pages import NOW

SECRET = "a-receipt-secret-of-at-least-32-bytes!"
POLICY = SessionPolicy(idle=timedelta(minutes=30), longest=timedelta(hours=12))


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The customers a session was opened for (instead of the database)."""
    customers: list[str] = []

    async def sign_in_member(
        engine: object, clock: object, policy: object, customer_id: str
    ) -> SignedIn:
        customers.append(customer_id)
        session = Session("member", customer_id, None, "csrf", NOW, NOW + POLICY.idle)
        return SignedIn("session-token", session)

    monkeypatch.setattr(usecase, "sign_in_member", sign_in_member)
    return customers


def link(expires_in: timedelta = timedelta(days=30), secret: str = SECRET) -> dict[str, str]:
    return dict(parse_qsl(sign_receipt_link(secret, "c-1", "p-1", NOW + expires_in)))


async def get(params: dict[str, str]) -> httpx.Response:
    """The receipt route in an app with the web's page errors (tests/support/web_pages.py's,
    plus the runtime, settings and policy this route reads)."""
    settings = SimpleNamespace(
        receipt_secret=SimpleNamespace(get_secret_value=lambda: SECRET), cookie_secure=True
    )
    app = FastAPI()
    app.include_router(wallet_receipt.router)
    web_app._page_errors(app)
    app.dependency_overrides[get_clock] = lambda: FixedClock(NOW)
    app.dependency_overrides[get_runtime] = lambda: SimpleNamespace(engine=None)
    app.dependency_overrides[get_web_settings] = lambda: settings
    app.dependency_overrides[get_policy] = lambda: POLICY
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://web") as client:
        return await client.get("/wallet/receipt", params={**params, "lang": "en"})


async def test_a_signed_receipt_link_signs_its_member_in(opened: list[str]) -> None:
    response = await get(link())
    assert response.status_code == 303 and response.headers["location"] == "/wallet"
    cookie = response.headers["set-cookie"]
    assert "fedelta_member=session-token" in cookie
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie
    assert opened == ["c-1"]


@pytest.mark.parametrize(
    "params",
    [
        link(expires_in=-timedelta(seconds=1)),
        link(secret="another-secret-of-at-least-32-bytes!!"),
        {**link(), "c": "c-2"},
        {k: v for k, v in link().items() if k != "s"},
        {},
    ],
    ids=["expired", "another-secret", "another-customer", "unsigned", "empty"],
)
async def test_a_bad_or_expired_link_is_gone_and_offers_the_email_link(
    opened: list[str], params: dict[str, str]
) -> None:
    response = await get(params)
    assert response.status_code == 410
    assert 'href="/wallet/sign-in"' in response.text and 'role="alert"' in response.text
    assert "fedelta_member" not in response.headers.get("set-cookie", "")
    assert opened == []
