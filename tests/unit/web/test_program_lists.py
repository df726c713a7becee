"""What every program list of the console shows besides its rows (the `listing` macro of
console/program_macros.html): a line saying there is none, or the service's refusal to
answer, and no table in either case."""

from __future__ import annotations

from types import ModuleType

import pytest

from services.web.api.routers import campaigns, engagement_rules, partners, rewards, segments
from tests.support.fakes.web import FakeServices
from tests.support.web_pages import pages, staff

# page -> (router, service, path the page lists)
LISTS: dict[str, tuple[ModuleType, str, str]] = {
    "campaigns": (campaigns, "points", "/v1/campaigns"),
    "rewards": (rewards, "points", "/v1/rewards"),
    "segments": (segments, "insights", "/v1/segments"),
    "partners": (partners, "ingest", "/v1/admin/partners"),
    "stamp-cards": (engagement_rules, "engagement", "/v1/stamp-cards"),
    "challenges": (engagement_rules, "engagement", "/v1/challenges"),
    "surprises": (engagement_rules, "engagement", "/v1/surprises"),
}


@pytest.mark.parametrize("page", list(LISTS))
async def test_an_empty_list_says_there_is_nothing_yet(page: str) -> None:
    router, service, path = LISTS[page]
    services = FakeServices()
    services.answer("GET", service, path, {"items": []})
    async with pages([router.router], services, who=staff("admin")) as client:
        response = await client.get(f"/console/{page}")
    assert response.status_code == 200
    assert "Nothing yet." in response.text
    assert "<table" not in response.text


@pytest.mark.parametrize("page", list(LISTS))
async def test_a_list_the_service_refuses_shows_why_and_no_table(page: str) -> None:
    router, service, path = LISTS[page]
    services = FakeServices()
    refused = {"title": "Forbidden", "detail": "the console credential may not read this"}
    services.answer("GET", service, path, refused, status=403)
    async with pages([router.router], services, who=staff("admin")) as client:
        response = await client.get(f"/console/{page}")
    assert 'role="alert"' in response.text
    assert "<table" not in response.text
    assert "Nothing yet." not in response.text
