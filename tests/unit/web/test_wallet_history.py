"""The points history: the member's ledger a page at a time, points' cursor leading on."""

from __future__ import annotations

from services.web.api.routers import wallet_history
from tests.support.fakes.web import FakeServices
from tests.support.web_pages import member, pages

ENTRY = {
    "id": "e-1",
    "kind": "earn",
    "points": 650,
    "reason": "purchase",
    "occurred_at": "2026-11-30T10:00:00+00:00",
    "available_at": "2026-11-30T10:00:00+00:00",
    "expires_at": None,
    "purchase_id": "p-1",
    "rule_ids": [],
    "lots": [],
}


async def test_the_history_shows_a_page_and_leads_to_older_ones() -> None:
    services = FakeServices()
    spent = {**ENTRY, "id": "e-2", "kind": "redeem", "points": -150, "reason": "Free coffee"}
    page_one = {"entries": [spent, ENTRY], "next_cursor": "41"}
    services.answer("GET", "points", r"/v1/customers/c-1/ledger", page_one)
    async with pages([wallet_history.router], services, who=member("c-1")) as client:
        first = await client.get("/wallet/history", params={"lang": "en"})
        older = await client.get("/wallet/history", params={"cursor": "41", "lang": "en"})
    assert first.status_code == 200
    assert "Earned" in first.text and "+650" in first.text and "-150" in first.text
    assert 'href="/wallet/history?cursor=41"' in first.text
    assert 'href="/wallet/history"' not in first.text.split("<main", 1)[1]
    assert 'href="/wallet/history">Newest' in older.text
    calls = services.sent("GET", "points")
    assert calls[0].params == {"limit": "20"}
    assert calls[1].params == {"limit": "20", "cursor": "41"}
    assert {c.actor for c in calls} == {"member:c-1"}


async def test_a_cursor_that_is_not_one_is_refused() -> None:
    services = FakeServices()
    async with pages([wallet_history.router], services, who=member("c-1")) as client:
        response = await client.get("/wallet/history", params={"cursor": "1; drop"})
    assert response.status_code == 422 and services.calls == []


async def test_points_away_is_said_and_no_points_yet_too() -> None:
    services = FakeServices()
    async with pages([wallet_history.router], services, who=member("c-1")) as client:
        empty = await client.get("/wallet/history", params={"lang": "en"})
        services.down.add("points")
        away = await client.get("/wallet/history", params={"lang": "en"})
    assert "No points yet." in empty.text
    assert away.status_code == 200 and "unavailable right now: points" in away.text
