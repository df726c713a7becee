"""The console's health page: every service's readiness (`/readyz`, asked with the actor), a
service that does not answer or is not ready shown as such, in words, not colour alone."""

from __future__ import annotations

from services.web.api.routers import health
from services.web.settings import CALLED
from tests.support.fakes.web import FakeServices
from tests.support.web_pages import pages, staff

READY = {"status": "ready", "checks": {"database": True, "kafka": True}}


def all_ready() -> FakeServices:
    services = FakeServices()
    for service in CALLED:
        services.answer("GET", service, "/readyz", READY)
    return services


async def test_every_service_ready() -> None:
    services = all_ready()
    async with pages([health.router], services, who=staff("viewer")) as client:
        response = await client.get("/console/health")
    assert response.status_code == 200
    assert 'role="status">6 of 6 services ready.' in response.text
    assert response.text.count(">Ready<") == 6
    assert sorted(call.service for call in services.calls) == sorted(CALLED)
    assert {(call.path, call.actor) for call in services.calls} == {("/readyz", "staff:alice")}


async def test_a_service_away_or_not_ready_is_shown_down() -> None:
    services = all_ready()
    services.down.add("points")
    services.answer("GET", "tiers", "/readyz", {"title": "Not ready"}, status=404)
    async with pages([health.router], services, who=staff()) as client:
        response = await client.get("/console/health")
    assert response.status_code == 200
    assert "4 of 6 services ready." in response.text
    for service in ("points", "tiers"):
        row = response.text.split(f'<th scope="row">{service}</th>')[1].split("</tr>")[0]
        assert "Down or not ready" in row
