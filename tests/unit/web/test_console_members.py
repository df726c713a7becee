"""The console's member search and 360° page: a member found by id or by email, each service's
part of the page (one away: that part says so, the rest shows), and a manager's changes
(points adjusted, a tier overridden) sent with the actor and the form's Idempotency-Key; a
viewer sees no form and is refused a post, and so is a form without the session's token."""

from __future__ import annotations

import re
from typing import Any

from services.web.api.routers import members
from tests.support.fakes.web import FakeServices
from tests.support.web_pages import CSRF, pages, staff

MEMBER = "/v1/customers/c-1"
BALANCE = {
    "customer_id": "c-1",
    "available": 1250,
    "pending": 40,
    "debt": 0,
    "lifetime_earned": 1600,
    "next_expiries": [{"points": 100, "expires_at": "2027-06-30T00:00:00Z"}],
}
LEDGER = {
    "entries": [
        {
            "id": "e-2",
            "kind": "adjustment",
            "points": 25,
            "reason": "Goodwill: late delivery",
            "occurred_at": "2026-11-30T10:00:00Z",
            "available_at": "2026-11-30T10:00:00Z",
            "expires_at": None,
            "purchase_id": None,
            "rule_ids": [],
            "lots": [],
        },
        {
            "id": "e-1",
            "kind": "earn",
            "points": 650,
            "reason": "purchase",
            "occurred_at": "2026-11-20T10:00:00Z",
            "available_at": "2026-11-20T10:00:00Z",
            "expires_at": None,
            "purchase_id": "p-1",
            "rule_ids": ["base"],
            "lots": [],
        },
    ],
    "next_cursor": None,
}
OFFERS = {
    "items": [
        {
            "id": "o-1",
            "reason": "win_back",
            "name": "We miss you",
            "multiplier": "2",
            "bonus": None,
            "starts_at": "2026-11-01T00:00:00Z",
            "ends_at": "2026-12-31T00:00:00Z",
        }
    ]
}
TIER = {
    "customer_id": "c-1",
    "tier": "silver",
    "since": "2026-11-20T10:00:00Z",
    "qualifying_spend": "650.00",
    "next_tier": "gold",
    "amount_to_next_tier": "850.00",
    "review_at": "2027-11-20T10:00:00Z",
    "amount_to_keep_tier": "0.00",
}
HISTORY = {
    "customer_id": "c-1",
    "changes": [
        {
            "from_tier": "bronze",
            "to_tier": "silver",
            "direction": "up",
            "reason": "vip event",
            "effective_at": "2026-11-20T10:00:00Z",
            "review_at": None,
            "actor": "console:staff:bob",
        }
    ],
}
NOTIFICATIONS = {
    "items": [
        {
            "notification_id": "n-1",
            "channel": "email",
            "template": "welcome",
            "status": "sent",
            "attempts": 1,
            "created_at": "2026-11-20T10:00:00Z",
            "sent_at": "2026-11-20T10:00:05Z",
        }
    ]
}
CARDS = {
    "customer_id": "c-1",
    "items": [
        {
            "card_id": "coffee",
            "name": "Coffee card",
            "stamps": 3,
            "stamps_required": 8,
            "completed_count": 0,
            "per": "purchase",
            "reward": {"points": 50},
            "ends_at": None,
        }
    ],
}
CHALLENGES = {
    "customer_id": "c-1",
    "items": [
        {
            "challenge_id": "ch-1",
            "name": "Spend 500",
            "goal": {"kind": "spend"},
            "progress": "650.00",
            "target": "500.00",
            "completed_at": "2026-11-20T10:00:00Z",
            "starts_at": "2026-11-01T00:00:00Z",
            "ends_at": None,
            "badge": "big-spender",
            "reward": None,
        }
    ],
}
BADGES = {
    "customer_id": "c-1",
    "items": [
        {"badge": "big-spender", "challenge_id": "ch-1", "earned_at": "2026-11-20T10:00:00Z"}
    ],
}
INSIGHTS = {
    "customer_id": "c-1",
    "as_of": "2026-12-01T12:00:00Z",
    "rfm": {"recency_days": 11, "frequency": 1, "monetary": "650.00", "r": 4, "f": 2, "m": 5},
    "lifecycle": "new",
    "lifecycle_reason": "first purchase within 30 days",
    "loyalty_types": [{"type": "big_spender", "reasons": ["top 20% by spend"]}],
    "tier": "silver",
    "segments": ["lifecycle:new", "vip"],
    "quintiles_as_of": None,
}
ADJUST_KEY = "adjust-form-key-0001"
ADJUSTED = {
    "adjustment_id": "a-1",
    "points": 25,
    "reason": "Goodwill",
    "actor": "console:staff:alice",
    "available_after": 1275,
}


def known_member() -> FakeServices:
    services = FakeServices()
    reads: dict[tuple[str, str], Any] = {
        ("points", f"{MEMBER}/balance"): BALANCE,
        ("points", f"{MEMBER}/ledger"): LEDGER,
        ("points", f"{MEMBER}/offers"): OFFERS,
        ("tiers", f"{MEMBER}/tier"): TIER,
        ("tiers", f"{MEMBER}/tier/history"): HISTORY,
        ("notifications", f"{MEMBER}/notifications"): NOTIFICATIONS,
        ("engagement", f"{MEMBER}/stamp-cards"): CARDS,
        ("engagement", f"{MEMBER}/challenges"): CHALLENGES,
        ("engagement", f"{MEMBER}/badges"): BADGES,
        ("insights", f"{MEMBER}/insights"): INSIGHTS,
    }
    for (service, path), body in reads.items():
        services.answer("GET", service, re.escape(path), body)
    return services


def form_key(page: str, action: str) -> str:
    form = page.split(f'action="{action}"')[1]
    found = re.search(r'name="idempotency_key" value="([^"]+)"', form)
    assert found is not None
    return found.group(1)


# --- search ---------------------------------------------------------------------------------


async def test_a_member_is_found_by_id() -> None:
    services = known_member()
    async with pages([members.router], services, who=staff("viewer")) as client:
        found = await client.get("/console/members", params={"q": " c-1 "})
        missing = await client.get("/console/members", params={"q": "c-2"})
    assert found.status_code == 200
    assert '<a href="/console/members/c-1">c-1</a>' in found.text
    assert services.calls[0].path == f"{MEMBER}/balance"
    assert services.calls[0].actor == "staff:alice"
    assert missing.status_code == 200 and "No member found for c-2." in missing.text


async def test_members_are_found_by_email() -> None:
    services = FakeServices()
    services.answer("GET", "notifications", "/v1/contacts", {"customer_ids": ["c-1", "c-9"]})
    async with pages([members.router], services, who=staff()) as client:
        response = await client.get("/console/members", params={"q": "ann@example.com"})
    assert 'href="/console/members/c-1"' in response.text
    assert 'href="/console/members/c-9"' in response.text
    [call] = services.calls
    assert call.service == "notifications" and call.params == {"email": "ann@example.com"}


async def test_a_query_that_is_neither_is_said_and_nothing_asked() -> None:
    services = FakeServices()
    async with pages([members.router], services, who=staff()) as client:
        response = await client.get("/console/members", params={"q": "not an id @ all"})
        empty = await client.get("/console/members")
    assert response.status_code == 422 and 'role="alert"' in response.text
    assert empty.status_code == 200 and 'for="q"' in empty.text
    assert services.calls == []


async def test_the_search_says_when_a_service_is_away() -> None:
    services = FakeServices(down={"notifications"})
    async with pages([members.router], services, who=staff()) as client:
        response = await client.get("/console/members", params={"q": "ann@example.com"})
    assert response.status_code == 503 and "notifications is not answering" in response.text


# --- the 360° page --------------------------------------------------------------------------


async def test_the_page_shows_what_every_service_knows() -> None:
    services = known_member()
    async with pages([members.router], services, who=staff()) as client:
        response = await client.get("/console/members/c-1")
    assert response.status_code == 200
    page = response.text
    expected = (
        'id="available">1,250<',  # points: the balance
        "Goodwill: late delivery",  # the ledger
        "We miss you",  # the offers
        "Silver",  # tiers: the tier
        "850.00 more to reach Gold",
        "console:staff:bob",  # the history's actor
        "welcome",  # notifications
        "Coffee card: 3 of 8 stamps",  # engagement
        "Spend 500: 650 of 500 (completed)",
        "big-spender",
        "new: first purchase within 30 days",  # insights
        "top 20% by spend",
        "lifecycle:new, vip",
    )
    for text in expected:
        assert text in page, text
    assert {call.actor for call in services.calls} == {"staff:alice"}
    assert len(services.calls) == 10


async def test_a_manager_gets_the_forms_each_with_a_key_of_its_own() -> None:
    async with pages([members.router], known_member(), who=staff("manager")) as client:
        first = (await client.get("/console/members/c-1")).text
        second = (await client.get("/console/members/c-1")).text
    adjust = form_key(first, "/console/members/c-1/adjustments")
    override = form_key(first, "/console/members/c-1/tier")
    assert adjust != override and adjust not in second
    assert f'name="csrf_token" value="{CSRF}"' in first
    assert 'for="adjust-points"' in first and 'for="override-tier"' in first


async def test_a_viewer_sees_no_form_and_is_refused_a_post() -> None:
    services = known_member()
    async with pages([members.router], services, who=staff("viewer")) as client:
        page = await client.get("/console/members/c-1")
        posted = await client.post(
            "/console/members/c-1/adjustments",
            data={"csrf_token": CSRF, "idempotency_key": ADJUST_KEY, "points": "25", "reason": "x"},
        )
    assert (
        page.status_code == 200 and '<form method="post" action="/console/members' not in page.text
    )
    assert posted.status_code == 403
    assert services.sent("POST", "points") == []


async def test_one_service_away_leaves_the_rest_of_the_page() -> None:
    services = known_member()
    services.down.add("engagement")
    async with pages([members.router], services, who=staff()) as client:
        response = await client.get("/console/members/c-1")
    assert response.status_code == 200
    assert "engagement is not answering" in response.text
    assert 'id="available">1,250<' in response.text and "Coffee card" not in response.text


async def test_an_unknown_member_is_a_404_page() -> None:
    async with pages([members.router], FakeServices(), who=staff()) as client:
        response = await client.get("/console/members/c-404")
    assert response.status_code == 404 and "No member has this id." in response.text


# --- changes --------------------------------------------------------------------------------


async def test_points_are_adjusted_with_the_actor_and_the_forms_key() -> None:
    services = known_member()
    services.answer("POST", "points", re.escape(f"{MEMBER}/adjustments"), ADJUSTED, status=201)
    form = {
        "csrf_token": CSRF,
        "idempotency_key": ADJUST_KEY,
        "points": "+25",
        "reason": " Goodwill ",
    }
    async with pages([members.router], services, who=staff("manager")) as client:
        response = await client.post("/console/members/c-1/adjustments", data=form)
        again = await client.post("/console/members/c-1/adjustments", data=form)
        page = await client.get(response.headers["location"])
    assert response.status_code == 303 == again.status_code
    assert response.headers["location"] == "/console/members/c-1?done=console.adjusted"
    first, second = services.sent("POST", "points")
    assert first.actor == "staff:alice" and first.body == {"points": 25, "reason": "Goodwill"}
    # A double submit carries the same key: points adjusts once and answers both alike.
    assert first.idempotency_key == second.idempotency_key == ADJUST_KEY
    assert 'role="status">Points adjusted, recorded as console:staff:alice.' in page.text


async def test_an_adjustment_points_refuses_is_said_on_the_page() -> None:
    services = known_member()
    services.answer("POST", "points", re.escape(f"{MEMBER}/adjustments"), {"title": "x"}, 409)
    form = {"csrf_token": CSRF, "idempotency_key": ADJUST_KEY, "points": "-9999", "reason": "x"}
    async with pages([members.router], services, who=staff()) as client:
        response = await client.post("/console/members/c-1/adjustments", data=form)
    assert response.status_code == 409
    assert 'role="alert">Refused: the member has not that many points' in response.text
    assert ADJUST_KEY not in response.text  # the page comes back with a fresh form


async def test_an_adjustment_that_cannot_be_is_said_and_not_sent() -> None:
    services = known_member()
    async with pages([members.router], services, who=staff()) as client:
        for points, reason in (("0", "x"), ("2.5", "x"), ("2000000", "x"), ("5", "  ")):
            form = {"csrf_token": CSRF, "idempotency_key": ADJUST_KEY, "points": points}
            response = await client.post(
                "/console/members/c-1/adjustments", data=form | {"reason": reason}
            )
            assert response.status_code == 422, points
            assert "Give a whole number of points" in response.text
    assert services.sent("POST", "points") == []


async def test_a_form_without_the_sessions_token_is_refused() -> None:
    services = known_member()
    form = {"csrf_token": "stale", "idempotency_key": ADJUST_KEY, "points": "25", "reason": "x"}
    async with pages([members.router], services, who=staff()) as client:
        response = await client.post("/console/members/c-1/adjustments", data=form)
    assert response.status_code == 403 and "The form expired" in response.text
    assert services.sent("POST", "points") == []


async def test_points_away_when_adjusting_is_a_503_page() -> None:
    services = known_member()
    services.down.add("points")
    form = {"csrf_token": CSRF, "idempotency_key": ADJUST_KEY, "points": "25", "reason": "x"}
    async with pages([members.router], services, who=staff()) as client:
        response = await client.post("/console/members/c-1/adjustments", data=form)
    assert response.status_code == 503 and "points" in response.text


async def test_a_tier_is_overridden_with_the_actor_and_the_forms_key() -> None:
    services = known_member()
    services.answer("POST", "tiers", re.escape(f"{MEMBER}/tier"), TIER | {"tier": "gold"})
    form = {
        "csrf_token": CSRF,
        "idempotency_key": "tier-form-key-00001",
        "tier": "gold",
        "reason": "VIP guest",
        "until": "2027-03-01",
    }
    async with pages([members.router], services, who=staff()) as client:
        response = await client.post("/console/members/c-1/tier", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/members/c-1?done=console.overridden"
    [call] = services.sent("POST", "tiers")
    assert call.actor == "staff:alice" and call.idempotency_key == "tier-form-key-00001"
    assert call.body == {
        "tier": "gold",
        "reason": "VIP guest",
        "until": "2027-03-01T00:00:00+00:00",
    }


async def test_an_override_tiers_refuses_or_that_cannot_be_is_said() -> None:
    services = known_member()
    services.answer("POST", "tiers", re.escape(f"{MEMBER}/tier"), {"title": "Conflict"}, 409)
    form = {"csrf_token": CSRF, "idempotency_key": "tier-form-key-00001", "reason": "VIP"}
    async with pages([members.router], services, who=staff()) as client:
        same = await client.post("/console/members/c-1/tier", data=form | {"tier": "silver"})
        unknown = await client.post("/console/members/c-1/tier", data=form | {"tier": "diamond"})
        bad_day = await client.post(
            "/console/members/c-1/tier", data=form | {"tier": "gold", "until": "someday"}
        )
    assert same.status_code == 409 and "already in that tier" in same.text
    assert unknown.status_code == 422 == bad_day.status_code
    assert len(services.sent("POST", "tiers")) == 1


async def test_only_known_notices_are_shown() -> None:
    async with pages([members.router], known_member(), who=staff()) as client:
        response = await client.get("/console/members/c-1", params={"done": "error.title"})
    assert 'class="notice"' not in response.text
