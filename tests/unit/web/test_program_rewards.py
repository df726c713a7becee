"""The console's rewards page: the catalogue, a new reward with the actor and the form's key,
a change and a retirement (each with a key of its own), points' 422 next to the form, a
viewer's POST and a stale form refused."""

from __future__ import annotations

from services.web.api.routers import rewards
from tests.support.fakes.web import FakeServices
from tests.support.web_pages import CSRF, pages, staff

REWARD = {
    "id": "rw-1",
    "name": "Free coffee",
    "points_cost": 150,
    "kind": "item",
    "value": "2.50",
    "partner_id": None,
    "min_tier": "silver",
    "stock": 40,
    "per_customer_limit": None,
    "starts_at": None,
    "ends_at": None,
    "coupon_validity_days": 30,
    "description": None,
    "redeemed": 3,
    "created_at": "2026-11-01T00:00:00Z",
    "retired_at": None,
}
FORM = {
    "csrf_token": CSRF,
    "idempotency_key": "form-key-2",
    "name": "Cinema ticket",
    "points_cost": "900",
    "kind": "coupon",
    "value": "9.00",
    "stock": "",
    "min_tier": "",
}


def listed() -> FakeServices:
    services = FakeServices()
    services.answer("GET", "points", "/v1/rewards", {"items": [REWARD]})
    return services


async def test_the_catalogue_is_listed() -> None:
    async with pages([rewards.router], listed(), who=staff("viewer")) as client:
        response = await client.get("/console/rewards")
    assert response.status_code == 200
    assert "Free coffee" in response.text and "silver" in response.text and "2.50" in response.text
    assert "/console/rewards/rw-1/retire" not in response.text  # a viewer only looks


async def test_each_row_form_has_a_key_of_its_own() -> None:
    async with pages([rewards.router], listed(), who=staff("manager")) as client:
        response = await client.get("/console/rewards")
    keys = [
        part.split('"')[0] for part in response.text.split('name="idempotency_key" value="')[1:]
    ]
    assert len(keys) == 3 and len(set(keys)) == 3


async def test_a_new_reward_is_posted_with_the_actor_and_the_key() -> None:
    services = listed()
    services.answer("POST", "points", "/v1/rewards", REWARD, status=201)
    async with pages([rewards.router], services, who=staff("manager")) as client:
        response = await client.post("/console/rewards", data=FORM)
    assert response.status_code == 303
    [call] = services.sent("POST", "points")
    assert call.actor == "staff:alice" and call.idempotency_key == "form-key-2"
    assert call.body == {
        "name": "Cinema ticket",
        "points_cost": 900,
        "kind": "coupon",
        "value": "9.00",
    }


async def test_a_reward_is_changed_and_retired() -> None:
    services = listed()
    services.answer("PATCH", "points", "/v1/rewards/rw-1", REWARD)
    services.answer("DELETE", "points", "/v1/rewards/rw-1", REWARD)
    change = {"csrf_token": CSRF, "idempotency_key": "k-c1", "points_cost": "120", "stock": ""}
    retire = {"csrf_token": CSRF, "idempotency_key": "k-r1"}
    async with pages([rewards.router], services, who=staff("manager")) as client:
        changed = await client.post("/console/rewards/rw-1/change", data=change)
        retired = await client.post("/console/rewards/rw-1/retire", data=retire)
    assert changed.status_code == 303 and retired.status_code == 303
    [patch] = services.sent("PATCH", "points")
    assert patch.body == {"points_cost": 120} and patch.idempotency_key == "k-c1"
    [delete] = services.sent("DELETE", "points")
    assert delete.idempotency_key == "k-r1" and delete.actor == "staff:alice"


async def test_points_refusal_is_shown_next_to_the_form() -> None:
    services = listed()
    problem = {"title": "Invalid request", "detail": "body.value: a value must be a string"}
    services.answer("POST", "points", "/v1/rewards", problem, status=422)
    async with pages([rewards.router], services, who=staff("manager")) as client:
        response = await client.post("/console/rewards", data=FORM)
    assert response.status_code == 422 and 'role="alert"' in response.text
    assert "body.value: a value must be a string" in response.text


async def test_a_cost_that_is_not_a_whole_number_is_refused_by_the_web() -> None:
    services = listed()
    async with pages([rewards.router], services, who=staff("manager")) as client:
        response = await client.post("/console/rewards", data=FORM | {"points_cost": "1e3"})
    assert response.status_code == 422 and "Cost in points" in response.text
    assert services.sent("POST", "points") == []


async def test_a_viewer_may_not_post_and_a_stale_form_is_refused() -> None:
    services = listed()
    async with pages([rewards.router], services, who=staff("viewer")) as client:
        viewer = await client.post("/console/rewards", data=FORM)
    async with pages([rewards.router], services, who=staff("manager")) as client:
        stale = await client.post("/console/rewards", data=FORM | {"csrf_token": "old"})
    assert viewer.status_code == 403 and stale.status_code == 403
    assert services.sent("POST", "points") == []
