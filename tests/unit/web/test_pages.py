"""The skeleton's pages: the console and the wallet render for who is signed in, with the
page's Content-Security-Policy and no inline script; the language follows the query."""

from __future__ import annotations

from services.web.api.routers import console, home, wallet
from tests.support.fakes.web import FakeServices
from tests.support.web_pages import member, pages, staff


async def test_the_console_dashboard_renders_for_staff() -> None:
    async with pages([console.router], FakeServices(), who=staff()) as client:
        response = await client.get("/console")
    assert response.status_code == 200
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "<script>" not in response.text and "alice" in response.text


async def test_the_wallet_renders_in_the_language_asked() -> None:
    async with pages([wallet.router], FakeServices(), who=member()) as client:
        response = await client.get("/wallet", params={"lang": "it"})
    assert response.status_code == 200
    assert '<html lang="it">' in response.text and "Portafoglio" in response.text
    assert "fedelta_lang=it" in response.headers["set-cookie"]


async def test_the_front_page_leads_to_both() -> None:
    async with pages([home.router], FakeServices()) as client:
        response = await client.get("/")
    assert 'href="/wallet"' in response.text and 'href="/console"' in response.text
