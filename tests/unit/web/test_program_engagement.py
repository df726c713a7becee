"""The console's stamp cards, challenges and surprises: each lists what engagement answered,
makes a rule with its essential fields (a reward in points or a reward_id, a window, a scope,
a tier or segment) with the actor and the form's key, shows engagement's 422 next to the form,
ends a rule with DELETE, and refuses a viewer's POST and a stale form."""

from __future__ import annotations

from typing import Any

import pytest

from services.web.api.routers import engagement_rules
from tests.support.fakes.web import FakeServices
from tests.support.web_pages import CSRF, pages, staff

Case = tuple[dict[str, Any], dict[str, str], dict[str, Any]]

CARD = {
    "id": "sc-1",
    "name": "Ten coffees",
    "stamps_required": 10,
    "per": "purchase",
    "category": "coffee",
    "partner_id": None,
    "store_id": None,
    "min_amount": None,
    "min_tier": None,
    "tier": None,
    "segment": None,
    "reward": {"points": 100, "reward_id": None},
    "starts_at": "2026-11-01T00:00:00Z",
    "ends_at": None,
}
CHALLENGE = {
    "id": "ch-1",
    "name": "Three shops",
    "goal": {"kind": "distinct_partners", "target": "3.00", "category": None, "partner_id": None},
    "starts_at": "2026-11-01T00:00:00Z",
    "ends_at": "2026-12-31T00:00:00Z",
    "reward": {"points": None, "reward_id": "rw-9"},
    "badge": "Explorer",
    "min_tier": None,
    "tier": "gold",
    "segment": None,
}
SURPRISE = {
    "id": "su-1",
    "name": "Lucky day",
    "chance": "0.02",
    "reward": {"points": 50},
    "min_tier": None,
    "tier": None,
    "segment": "loyalty:happy",
    "partner_id": None,
    "store_id": None,
    "category": None,
    "starts_at": "2026-11-01T00:00:00Z",
    "ends_at": None,
    "daily_budget": 1000,
    "cooldown_days": None,
}
BASE = {"csrf_token": CSRF, "idempotency_key": "form-key-3", "starts_at": "2026-12-01T00:00"}
CASES: dict[str, Case] = {
    "stamp-cards": (
        CARD,
        {"name": "Five lunches", "stamps_required": "5", "per": "purchase", "reward_points": "80"},
        {
            "name": "Five lunches",
            "stamps_required": 5,
            "per": "purchase",
            "reward": {"points": 80},
            "starts_at": "2026-12-01T00:00:00Z",
        },
    ),
    "challenges": (
        CHALLENGE,
        {
            "name": "Spend 200",
            "goal_kind": "spend",
            "goal_target": "200",
            "reward_id": "rw-9",
            "ends_at": "2026-12-31T00:00",
            "category": "books",
            "segment": "lifecycle:at_risk",
        },
        {
            "name": "Spend 200",
            "goal": {"kind": "spend", "target": "200", "category": "books"},
            "reward": {"reward_id": "rw-9"},
            "starts_at": "2026-12-01T00:00:00Z",
            "ends_at": "2026-12-31T00:00:00Z",
            "segment": "lifecycle:at_risk",
        },
    ),
    "surprises": (
        SURPRISE,
        {"name": "Gift", "chance": "0.05", "reward_points": "20", "tier": "silver"},
        {
            "name": "Gift",
            "chance": "0.05",
            "reward": {"points": 20},
            "starts_at": "2026-12-01T00:00:00Z",
            "tier": "silver",
        },
    ),
}


def listed(kind: str) -> FakeServices:
    services = FakeServices()
    services.answer("GET", "engagement", f"/v1/{kind}", {"items": [CASES[kind][0]]})
    return services


@pytest.mark.parametrize("kind", list(CASES))
async def test_each_page_lists_what_engagement_answered(kind: str) -> None:
    async with pages([engagement_rules.router], listed(kind), who=staff("viewer")) as client:
        response = await client.get(f"/console/{kind}")
    assert response.status_code == 200
    assert str(CASES[kind][0]["name"]) in response.text
    assert f"/console/{kind}/" not in response.text  # a viewer has no end button


@pytest.mark.parametrize("kind", list(CASES))
async def test_a_rule_is_made_with_its_essential_fields(kind: str) -> None:
    services = listed(kind)
    services.answer("POST", "engagement", f"/v1/{kind}", CASES[kind][0], status=201)
    async with pages([engagement_rules.router], services, who=staff("manager")) as client:
        response = await client.post(f"/console/{kind}", data=BASE | CASES[kind][1])
    assert response.status_code == 303
    assert response.headers["location"] == f"/console/{kind}?done=program.done.created"
    [call] = services.sent("POST", "engagement")
    assert call.path == f"/v1/{kind}" and call.actor == "staff:alice"
    assert call.idempotency_key == "form-key-3" and call.body == CASES[kind][2]


async def test_a_reward_is_points_or_a_catalogue_reward_not_both() -> None:
    services = listed("stamp-cards")
    form = BASE | CASES["stamp-cards"][1] | {"reward_id": "rw-1"}
    async with pages([engagement_rules.router], services, who=staff("manager")) as client:
        response = await client.post("/console/stamp-cards", data=form)
    assert response.status_code == 422
    assert "Give points or a reward id of the catalogue, not both." in response.text
    assert services.sent("POST", "engagement") == []


async def test_engagements_refusal_is_shown_next_to_the_form() -> None:
    services = listed("surprises")
    problem = {"title": "Invalid request", "detail": "ends_at must be after starts_at"}
    services.answer("POST", "engagement", "/v1/surprises", problem, status=422)
    async with pages([engagement_rules.router], services, who=staff("manager")) as client:
        response = await client.post("/console/surprises", data=BASE | CASES["surprises"][1])
    assert response.status_code == 422 and "ends_at must be after starts_at" in response.text
    assert 'value="Gift"' in response.text


async def test_a_rule_is_ended_with_delete() -> None:
    services = listed("challenges")
    services.answer("DELETE", "engagement", "/v1/challenges/ch-1", None, status=204)
    async with pages([engagement_rules.router], services, who=staff("manager")) as client:
        response = await client.post("/console/challenges/ch-1/end", data={"csrf_token": CSRF})
    assert response.status_code == 303
    [call] = services.sent("DELETE", "engagement")
    assert call.path == "/v1/challenges/ch-1" and call.actor == "staff:alice"


async def test_a_viewer_may_not_post_and_a_stale_form_is_refused() -> None:
    services = listed("stamp-cards")
    form = BASE | CASES["stamp-cards"][1]
    async with pages([engagement_rules.router], services, who=staff("viewer")) as client:
        viewer = await client.post("/console/stamp-cards", data=form)
        end = await client.post("/console/stamp-cards/sc-1/end", data={"csrf_token": CSRF})
    async with pages([engagement_rules.router], services, who=staff("manager")) as client:
        stale = await client.post("/console/stamp-cards", data=form | {"csrf_token": "x"})
    assert (viewer.status_code, end.status_code, stale.status_code) == (403, 403, 403)
    assert services.sent("POST", "engagement") == [] and services.sent("DELETE", "engagement") == []


async def test_engagement_away_is_a_503_page() -> None:
    services = listed("challenges")
    services.down.add("engagement")
    async with pages([engagement_rules.router], services, who=staff()) as client:
        response = await client.get("/console/challenges")
    assert response.status_code == 503 and "engagement" in response.text
