"""Stamp cards drawn as stamps (with the count in words), challenges with their progress, and
badges; engagement away is said on the page."""

from __future__ import annotations

from services.web.api.routers import wallet_cards
from tests.support.fakes.web import FakeServices
from tests.support.web_pages import member, pages


def engagement() -> FakeServices:
    services = FakeServices()
    card = {
        "card_id": "sc-1",
        "name": "Coffee card",
        "stamps": 3,
        "stamps_required": 9,
        "completed_count": 1,
        "per": "purchase",
        "reward": {"points": 100, "reward_id": None},
        "ends_at": None,
    }
    challenge = {
        "challenge_id": "ch-1",
        "name": "Spend in December",
        "goal": {"kind": "spend", "target": "200.00", "category": None, "partner_id": None},
        "progress": "50.00",
        "target": "200.00",
        "completed_at": None,
        "starts_at": "2026-12-01T00:00:00+00:00",
        "ends_at": "2026-12-31T00:00:00+00:00",
        "badge": "big-spender",
        "reward": None,
    }
    badge = {"badge": "first-visit", "challenge_id": "ch-0", "earned_at": "2026-10-01T10:00:00Z"}
    base = r"/v1/customers/c-1"
    services.answer("GET", "engagement", f"{base}/stamp-cards", {"items": [card]})
    services.answer("GET", "engagement", f"{base}/challenges", {"items": [challenge]})
    services.answer("GET", "engagement", f"{base}/badges", {"items": [badge]})
    return services


async def test_stamp_cards_are_drawn_as_stamps_with_their_count_in_words() -> None:
    services = engagement()
    async with pages([wallet_cards.router], services, who=member("c-1")) as client:
        response = await client.get("/wallet/cards", params={"lang": "en"})
    page = response.text
    assert response.status_code == 200
    assert page.count('class="stamp filled"') == 3 and page.count('class="stamp"') == 6
    assert "3 of 9 stamps" in page and "A full card gives 100 points." in page
    assert '<progress value="50.00" max="200.00"' in page and "50.00 of 200.00 spent" in page
    assert "Badge: big-spender" in page and "first-visit" in page
    assert {c.actor for c in services.calls} == {"member:c-1"}


async def test_the_cards_in_polish() -> None:
    async with pages([wallet_cards.router], engagement(), who=member("c-1")) as client:
        response = await client.get("/wallet/cards", params={"lang": "pl"})
    assert "3 z 9 pieczątek" in response.text


async def test_a_member_without_cards_sees_none_and_engagement_away_is_said() -> None:
    services = FakeServices()
    async with pages([wallet_cards.router], services, who=member("c-1")) as client:
        empty = await client.get("/wallet/cards", params={"lang": "en"})
        services.down.add("engagement")
        away = await client.get("/wallet/cards", params={"lang": "en"})
    assert "No stamp cards yet." in empty.text and "No badges yet." in empty.text
    assert away.status_code == 200 and "unavailable right now: engagement" in away.text
