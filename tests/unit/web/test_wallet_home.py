"""The wallet's home: balance, what expires next, the tier with a bar per route to the next and
what keeps it, the offers; a service away leaves its part out with a notice. Only the
signed-in member's own data is asked for."""

from __future__ import annotations

from decimal import Decimal

from services.web.api.routers import wallet
from services.web.usecases.wallet import tier_view
from tests.support.fakes.web import FakeServices
from tests.support.web_pages import member, pages

BALANCE = {
    "customer_id": "c-1",
    "available": 1250,
    "pending": 40,
    "debt": 0,
    "lifetime_earned": 2000,
    "next_expiries": [
        {"points": 300, "expires_at": "2027-03-31T00:00:00+00:00"},
        {"points": 100, "expires_at": "2027-01-15T00:00:00+00:00"},
    ],
}
TIER = {
    "customer_id": "c-1",
    "tier": "silver",
    "since": "2026-05-01T00:00:00+00:00",
    "qualifying_spend": "650.00",
    "next_tier": "gold",
    "amount_to_next_tier": "350.00",
    "review_at": "2027-05-01T00:00:00+00:00",
    "amount_to_keep_tier": "0.00",
    "qualifying_visits": 4,
    "visits_to_next_tier": 6,
    "next_tier_match": "any",
}
OFFERS = {
    "items": [
        {
            "id": "o-1",
            "reason": "win_back",
            "name": "We miss you",
            "multiplier": "2",
            "bonus": None,
            "starts_at": "2026-11-20T00:00:00+00:00",
            "ends_at": "2026-12-20T00:00:00+00:00",
        }
    ]
}


def answered() -> FakeServices:
    services = FakeServices()
    services.answer("GET", "points", r"/v1/customers/c-1/balance", BALANCE)
    services.answer("GET", "points", r"/v1/customers/c-1/offers", OFFERS)
    services.answer("GET", "tiers", r"/v1/customers/c-1/tier", TIER)
    services.answer("GET", "tiers", r"/v1/tiers", {"currency": "EUR", "tiers": []})
    return services


async def test_the_home_shows_the_balance_the_tier_and_the_offers() -> None:
    services = answered()
    async with pages([wallet.router], services, who=member("c-1")) as client:
        response = await client.get("/wallet", params={"lang": "en"})
    assert response.status_code == 200
    page = response.text
    assert "1,250" in page and "Pending" in page and "Owed" in page
    # The soonest of the expiries, not the first listed.
    assert "100 points expire on Jan 15, 2027." in page
    assert "Silver" in page and "On your way to Gold" in page
    assert '<progress id="progress-amount" value="650.00" max="1000.00"' in page
    assert "650.00 of 1,000.00 EUR spent: 350.00 to go." in page
    assert "4 of 10 visits: 6 to go." in page
    assert "You keep Silver at the review on May 1, 2027." in page
    assert "We miss you" in page and "2 times the points" in page
    assert {c.actor for c in services.calls} == {"member:c-1"}
    assert all("c-1" in c.path for c in services.calls if "customers" in c.path)


async def test_the_home_is_in_the_member_s_language() -> None:
    async with pages([wallet.router], answered(), who=member("c-1")) as client:
        response = await client.get("/wallet", params={"lang": "fi"})
    assert '<html lang="fi">' in response.text and "Pisteesi" in response.text
    assert "1\xa0250" in response.text  # Finnish groups thousands with a no-break space


async def test_a_service_away_leaves_its_part_out_with_a_notice() -> None:
    services = answered()
    services.down.add("tiers")
    async with pages([wallet.router], services, who=member("c-1")) as client:
        response = await client.get("/wallet", params={"lang": "en"})
    assert response.status_code == 200
    assert 'role="alert"' in response.text and "unavailable right now: tiers" in response.text
    assert "1,250" in response.text and "Your tier appears here" in response.text


async def test_a_member_points_does_not_know_yet_sees_it_said() -> None:
    async with pages([wallet.router], FakeServices(), who=member("c-9")) as client:
        response = await client.get("/wallet", params={"lang": "en"})
    assert response.status_code == 200
    assert "Your points appear here after your first purchase" in response.text


def test_keeping_a_tier_needs_every_route_when_its_routes_all_count() -> None:
    view = tier_view(
        {
            "tier": "gold",
            "qualifying_spend": "1200.00",
            "next_tier": None,
            "amount_to_next_tier": None,
            "review_at": "2027-05-01T00:00:00+00:00",
            "amount_to_keep_tier": "0.00",
            "visits_to_keep_tier": 3,
            "tier_match": "all",
        }
    )
    assert view.progress == [] and view.kept is False
    assert [(k.route, k.missing) for k in view.keeping] == [
        ("amount", Decimal("0.00")),
        ("visits", Decimal(3)),
    ]


def test_the_entry_tier_has_nothing_to_keep() -> None:
    view = tier_view({"tier": "bronze", "next_tier": "silver", "amount_to_next_tier": "100"})
    assert view.kept is None and [p.maximum for p in view.progress] == [Decimal(100)]


async def test_what_keeping_the_tier_still_needs_is_listed() -> None:
    services = answered()
    short = {**TIER, "amount_to_keep_tier": "120.50", "visits_to_keep_tier": 2, "tier_match": "all"}
    services.answer("GET", "tiers", r"/v1/customers/c-1/tier", short)
    async with pages([wallet.router], services, who=member("c-1")) as client:
        response = await client.get("/wallet", params={"lang": "it"})
    assert "Per mantenere il livello Silver alla verifica del 1 mag 2027:" in response.text
    assert "spendi altri 120,50 EUR" in response.text and "fai altre 2 visite" in response.text
