"""The console's dashboard: insights' KPIs for the period asked (the last 30 days by default),
the two charts as SVG images of the web's own with their alt texts and figures, a period that
cannot be, and insights away (the page says so)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from services.web.api.i18n import MESSAGES
from services.web.api.routers import charts, console
from tests.support.fakes.web import FakeServices
from tests.support.web_pages import pages, staff

KPIS: dict[str, Any] = {
    "period": {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T12:00:00Z"},
    "active_members": 1234,
    "repeat_purchase_rate": "0.2500",
    "average_basket": "42.50",
    "points": {"issued": 15000, "redeemed": 3000, "expired": 200, "reversed": 0, "adjusted_out": 0},
    "breakage": "0.0133",
    "redemption_rate": "0.2000",
    "liability_interval": "day",
    "liability_trend": [
        {"at": "2026-11-02T00:00:00Z", "points": 1000},
        {"at": "2026-11-03T00:00:00Z", "points": 2500},
        {"at": "2026-12-01T12:00:00Z", "points": 11800},
    ],
    "tier_distribution": {"bronze": 900, "silver": 250, "gold": 80, "platinum": 4},
    "nps": {"responses": 30, "promoters": 20, "passives": 4, "detractors": 6, "score": 47},
    "win_back": {"lapsed_at_start": 40, "won_back": 10, "rate": "0.2500"},
}
ROUTERS = [console.router, charts.router]


def with_kpis() -> FakeServices:
    services = FakeServices()
    services.answer("GET", "insights", "/v1/kpis", KPIS)
    return services


async def test_the_dashboard_shows_the_kpis_of_the_last_30_days() -> None:
    services = with_kpis()
    async with pages(ROUTERS, services, who=staff("viewer")) as client:
        response = await client.get("/console")
    assert response.status_code == 200
    page = response.text
    assert 'id="kpi-active-members">1,234<' in page
    for figure in ("25.0%", "42.50", "15,000", "3,000", "1.3%", "20.0%", ">47<", "10 of 40"):
        assert figure in page, figure
    [call] = services.calls
    assert call.actor == "staff:alice" and call.path == "/v1/kpis"
    # 30 days back from the test's today (2026-12-01, 12:00 UTC), to now.
    assert call.params == {"from": "2026-11-01T00:00:00+00:00", "to": "2026-12-01T12:00:00+00:00"}
    assert 'value="2026-11-01"' in page and 'value="2026-12-01"' in page


async def test_both_charts_are_images_of_the_web_with_an_alt_text_and_their_figures() -> None:
    async with pages(ROUTERS, with_kpis(), who=staff()) as client:
        page = (
            await client.get("/console", params={"from": "2026-11-01", "to": "2026-11-30"})
        ).text
    assert 'src="/console/charts/liability.svg?from=2026-11-01&amp;to=2026-11-30"' in page
    assert 'src="/console/charts/tiers.svg?from=2026-11-01&amp;to=2026-11-30"' in page
    assert "1,000 at the start, 11,800 at the end, lowest 1,000, highest 11,800" in page
    assert "members by tier: Bronze 900, Silver 250, Gold 80, Platinum 4." in page
    # The same figures in tables: the trend by the day each point closes.
    assert '<th scope="row">Nov 1, 2026</th><td class="number">1,000</td>' in page
    assert '<th scope="row">Silver</th><td class="number">250</td>' in page
    assert "<script" not in page


async def test_a_period_asked_for_is_sent_as_instants() -> None:
    services = with_kpis()
    async with pages(ROUTERS, services, who=staff()) as client:
        await client.get("/console", params={"from": "2026-10-01", "to": "2026-10-31"})
    assert services.calls[0].params == {
        "from": "2026-10-01T00:00:00+00:00",
        "to": "2026-11-01T00:00:00+00:00",
    }


async def test_a_period_that_cannot_be_is_said_and_nothing_asked() -> None:
    services = with_kpis()
    async with pages(ROUTERS, services, who=staff()) as client:
        backwards = await client.get("/console", params={"from": "2026-11-30", "to": "2026-11-01"})
        garbled = await client.get("/console", params={"from": "yesterday"})
        too_long = await client.get("/console", params={"from": "2020-01-01", "to": "2026-01-01"})
    for response in (backwards, garbled, too_long):
        assert response.status_code == 422
        assert 'role="alert"' in response.text and "at most three years" in response.text
    assert services.calls == []


async def test_insights_away_the_page_says_so() -> None:
    services = FakeServices(down={"insights"})
    async with pages(ROUTERS, services, who=staff()) as client:
        response = await client.get("/console")
        chart = await client.get("/console/charts/liability.svg")
    assert response.status_code == 503
    assert "insights is not answering" in response.text and 'name="from"' in response.text
    assert "charts/liability.svg" not in response.text
    assert chart.status_code == 503


async def test_insights_refusing_is_said_without_failing_the_page() -> None:
    services = FakeServices()
    services.answer("GET", "insights", "/v1/kpis", {"title": "Invalid"}, status=422)
    async with pages(ROUTERS, services, who=staff()) as client:
        response = await client.get("/console")
    assert response.status_code == 200
    assert "Insights could not give the key figures" in response.text


async def test_the_liability_chart_is_an_svg_without_script_or_foreign_asset() -> None:
    async with pages(ROUTERS, with_kpis(), who=staff()) as client:
        response = await client.get("/console/charts/liability.svg")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    csp = response.headers["content-security-policy"]
    assert csp == "default-src 'none'; style-src 'unsafe-inline'"
    assert response.headers["x-content-type-options"] == "nosniff"
    svg = response.text
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "pygal-tooltips" not in svg and "kozea.github.io" not in svg
    assert "11,800" in svg and "2 Nov" in svg  # the values and the days, in the locale


async def test_the_tiers_chart_names_the_tiers_in_the_language_asked() -> None:
    async with pages(ROUTERS, with_kpis(), who=staff()) as client:
        response = await client.get("/console/charts/tiers.svg", params={"lang": "it"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/svg+xml"
    assert all(name in response.text for name in ("Bronzo", "Argento", "Oro", "Platino"))


async def test_a_chart_of_a_period_that_cannot_be_is_refused() -> None:
    async with pages(ROUTERS, with_kpis(), who=staff()) as client:
        response = await client.get("/console/charts/tiers.svg", params={"from": "2027-01-01"})
    assert response.status_code == 422


def test_every_word_the_console_pages_name_exists() -> None:
    """A key missing from the catalogue would show as itself on the page."""
    templates = Path(console.__file__).resolve().parents[2] / "templates" / "console"
    names = ("dashboard.html", "members.html", "member.html", "health.html")
    used = {
        key
        for name in names
        for key in re.findall(r'\bt\(["\']([a-z_.]+)["\']\s*[,)]', (templates / name).read_text())
    }
    assert used and not used - set(MESSAGES["en"])
    assert {f"console.tier.{name}" for name in ("bronze", "silver", "gold", "platinum")} <= set(
        MESSAGES["en"]
    )
