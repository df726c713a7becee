"""The console's settlement report: the period asked, points' report as tables, a bad date
refused on the page, points' refusal shown, and points away."""

from __future__ import annotations

from services.web.api.routers import settlement
from tests.support.fakes.web import FakeServices
from tests.support.web_pages import pages, staff

REPORT = {
    "from": "2026-11-01T00:00:00Z",
    "to": "2026-12-01T00:00:00Z",
    "point_value": "0.01",
    "currency": "EUR",
    "pairs": [{"issued_by": "bakery", "honoured_by": "cinema", "points": 1500, "value": "15.00"}],
    "partners": [
        {"partner_id": "bakery", "owes": "15.00", "is_owed": "0.00", "net": "-15.00"},
        {"partner_id": "cinema", "owes": "0.00", "is_owed": "15.00", "net": "15.00"},
    ],
}


async def test_the_form_alone_before_a_period_is_asked() -> None:
    services = FakeServices()
    async with pages([settlement.router], services, who=staff("viewer")) as client:
        response = await client.get("/console/settlement")
    assert response.status_code == 200 and 'for="f-from"' in response.text
    assert services.calls == []


async def test_the_report_of_the_period_as_tables() -> None:
    services = FakeServices()
    services.answer("GET", "points", "/v1/reports/settlement", REPORT)
    period = {"from": "2026-11-01", "to": "2026-12-01"}
    async with pages([settlement.router], services, who=staff("viewer")) as client:
        response = await client.get("/console/settlement", params=period)
    assert response.status_code == 200
    assert "cinema" in response.text and "-15.00" in response.text and "1,500" in response.text
    [call] = services.calls
    assert call.params == {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}
    assert call.actor == "staff:alice"


async def test_a_bad_date_and_points_refusal_are_shown() -> None:
    services = FakeServices()
    problem = {"title": "Invalid request", "detail": "to must be after from"}
    services.answer("GET", "points", "/v1/reports/settlement", problem, status=422)
    async with pages([settlement.router], services, who=staff()) as client:
        bad = await client.get("/console/settlement", params={"from": "yesterday", "to": ""})
        refused = await client.get(
            "/console/settlement", params={"from": "2026-12-01", "to": "2026-11-01"}
        )
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    assert refused.status_code == 422 and "to must be after from" in refused.text


async def test_points_away_is_a_503_page() -> None:
    services = FakeServices(down={"points"})
    async with pages([settlement.router], services, who=staff()) as client:
        response = await client.get(
            "/console/settlement", params={"from": "2026-11-01", "to": "2026-12-01"}
        )
    assert response.status_code == 503
