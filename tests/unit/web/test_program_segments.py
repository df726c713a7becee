"""The console's segments: the list, a custom segment made from the criteria chosen (with the
actor and the form's key), insights' 422 next to the form, a custom segment deleted (a built-in
one cannot be), a segment's members a page at a time, and what a viewer and a stale form get."""

from __future__ import annotations

from services.web.api.routers import segments
from tests.support.fakes.web import FakeServices
from tests.support.web_pages import CSRF, pages, staff

BUILT_IN = {
    "name": "lifecycle:at_risk",
    "kind": "built_in",
    "description": "At risk",
    "members": 12,
}
CUSTOM = {
    "name": "big-spenders",
    "kind": "custom",
    "description": "Spend over 500",
    "criteria": {"min_monetary": "500"},
    "members": 3,
}
FORM = {
    "csrf_token": CSRF,
    "idempotency_key": "form-key-4",
    "name": "gold-regulars",
    "description": "Gold members who buy often",
    "min_f": "4",
    "min_monetary": "",
}


def listed() -> FakeServices:
    services = FakeServices()
    services.answer("GET", "insights", "/v1/segments", {"items": [BUILT_IN, CUSTOM]})
    return services


async def test_the_segments_are_listed_with_a_link_to_their_members() -> None:
    async with pages([segments.router], listed(), who=staff("manager")) as client:
        response = await client.get("/console/segments")
    assert response.status_code == 200
    assert 'href="/console/segments/lifecycle%3Aat_risk"' in response.text
    assert "/console/segments/big-spenders/delete" in response.text
    assert "/console/segments/lifecycle:at_risk/delete" not in response.text


async def test_a_custom_segment_is_made_from_the_criteria_chosen() -> None:
    services = listed()
    services.answer("POST", "insights", "/v1/segments", CUSTOM, status=201)
    data = [*FORM.items(), ("tiers", "platinum"), ("tiers", "gold"), ("lifecycle", "active")]
    async with pages([segments.router], services, who=staff("manager")) as client:
        response = await client.post(
            "/console/segments",
            content="&".join(f"{k}={v}".replace(" ", "+") for k, v in data),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 303
    [call] = services.sent("POST", "insights")
    assert call.actor == "staff:alice" and call.idempotency_key == "form-key-4"
    assert call.body == {
        "name": "gold-regulars",
        "description": "Gold members who buy often",
        "criteria": {"lifecycle": ["active"], "tiers": ["gold", "platinum"], "min_f": 4},
    }


async def test_a_segment_needs_a_criterion_and_a_custom_name() -> None:
    services = listed()
    no_criteria = FORM | {"min_f": ""}
    async with pages([segments.router], services, who=staff("manager")) as client:
        empty = await client.post("/console/segments", data=no_criteria)
        colon = await client.post("/console/segments", data=FORM | {"name": "tier:gold"})
    assert empty.status_code == 422 and "Give at least one criterion." in empty.text
    assert colon.status_code == 422
    assert services.sent("POST", "insights") == []


async def test_insights_refusal_is_shown_next_to_the_form() -> None:
    services = listed()
    problem = {"title": "Conflict", "detail": "a segment named gold-regulars exists"}
    services.answer("POST", "insights", "/v1/segments", problem, status=422)
    async with pages([segments.router], services, who=staff("manager")) as client:
        response = await client.post("/console/segments", data=FORM)
    assert response.status_code == 422 and "a segment named gold-regulars exists" in response.text


async def test_a_custom_segment_is_deleted() -> None:
    services = listed()
    services.answer("DELETE", "insights", "/v1/segments/big-spenders", None, status=204)
    async with pages([segments.router], services, who=staff("manager")) as client:
        response = await client.post(
            "/console/segments/big-spenders/delete", data={"csrf_token": CSRF}
        )
        built_in = await client.post(
            "/console/segments/lifecycle:at_risk/delete", data={"csrf_token": CSRF}
        )
    assert response.status_code == 303
    assert built_in.status_code == 404 and "Only a custom segment" in built_in.text
    [call] = services.sent("DELETE", "insights")
    assert call.path == "/v1/segments/big-spenders"


async def test_a_segments_members_a_page_at_a_time() -> None:
    services = FakeServices()
    services.answer("GET", "insights", "/v1/segments/lifecycle:at_risk", BUILT_IN)
    page = {
        "items": [{"customer_id": "c-7", "since": "2026-11-30T10:00:00Z", "reasons": ["quiet"]}],
        "next_cursor": "c-7",
    }
    services.answer("GET", "insights", "/v1/segments/lifecycle:at_risk/members", page)
    async with pages([segments.router], services, who=staff("viewer")) as client:
        response = await client.get("/console/segments/lifecycle:at_risk", params={"cursor": "c-3"})
    assert response.status_code == 200
    assert "c-7" in response.text and "quiet" in response.text and "12 members" in response.text
    assert 'href="/console/segments/lifecycle%3Aat_risk?cursor=c-7"' in response.text
    members = [c for c in services.calls if c.path.endswith("/members")]
    assert members[0].params == {"limit": "50", "cursor": "c-3"}


async def test_an_unknown_segment_is_a_404_page() -> None:
    services = FakeServices()
    async with pages([segments.router], services, who=staff("viewer")) as client:
        unknown = await client.get("/console/segments/nobody")
        odd = await client.get("/console/segments/Not%20A%20Name")
    assert unknown.status_code == 404 and odd.status_code == 404


async def test_a_viewer_may_not_post_and_a_stale_form_is_refused() -> None:
    services = listed()
    async with pages([segments.router], services, who=staff("viewer")) as client:
        viewer = await client.post("/console/segments", data=FORM)
    async with pages([segments.router], services, who=staff("manager")) as client:
        stale = await client.post("/console/segments", data=FORM | {"csrf_token": "x"})
    assert viewer.status_code == 403 and stale.status_code == 403
    assert services.sent("POST", "insights") == []
