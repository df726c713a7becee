"""The program console in a real browser on the whole pipeline: the dev.env's staff account (an
admin, so a manager too) signs in, creates a campaign and a custom segment with the console's
forms, and finds them listed; axe finds no serious violation on the campaigns page; a refused
form shows the service's reason next to it. Screenshots under the test's artifacts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Page, expect

from tests.e2e.conftest import Pipeline
from tests.support.browser import accessibility, snap

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


async def _sign_in(page: Page, pipeline: Pipeline) -> None:
    env = pipeline.env
    assert env.console_user and env.console_password, "dev.env names the console's account"
    await page.goto(f"{env.console_url}/sign-in")
    await page.fill("#username", env.console_user)
    await page.fill("#password", env.console_password)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(env.console_url)


def _local(moment: datetime) -> str:
    """What a datetime-local field takes (the console's windows are in UTC)."""
    return moment.strftime("%Y-%m-%dT%H:%M")


async def test_a_manager_creates_a_campaign_and_a_segment(pipeline: Pipeline, page: Page) -> None:
    await _sign_in(page, pipeline)
    suffix = uuid.uuid4().hex[:8]
    start = datetime.now(UTC) + timedelta(days=1)

    await page.click("nav >> text=Campaigns")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Campaigns")
    assert await accessibility(page) == []
    await page.fill("#f-name", f"Double points {suffix}")
    await page.fill("#f-multiplier", "2")
    await page.fill("#f-starts_at", _local(start))
    await page.fill("#f-ends_at", _local(start + timedelta(days=7)))
    await page.select_option("#f-tier", "gold")
    await snap(page, "campaign form")
    await page.click("form[action='/console/campaigns'] button[type=submit]")
    await expect(page.get_by_role("status")).to_have_text("Created.")
    await expect(page.get_by_role("rowheader", name=f"Double points {suffix}")).to_be_visible()
    assert await accessibility(page) == []
    await snap(page, "campaign listed")

    await page.click("nav >> text=Segments")
    await page.fill("#f-name", f"e2e-{suffix}")
    await page.fill("#f-description", "Gold members, made by the browser test")
    await page.select_option("#f-tiers", ["gold"])
    await page.click("form[action='/console/segments'] button[type=submit]")
    await expect(page.get_by_role("status")).to_have_text("Created.")
    await expect(page.get_by_role("link", name=f"e2e-{suffix}")).to_be_visible()
    await snap(page, "segment listed")
    await page.click(f"text=e2e-{suffix}")
    await expect(page.get_by_role("heading", level=1)).to_contain_text(f"e2e-{suffix}")


async def test_a_refused_campaign_shows_the_reason_next_to_the_form(
    pipeline: Pipeline, page: Page
) -> None:
    await _sign_in(page, pipeline)
    start = datetime.now(UTC) + timedelta(days=2)
    await page.goto(f"{pipeline.env.console_url}/campaigns")
    await page.fill("#f-name", "Ends before it starts")
    await page.fill("#f-bonus", "50")
    await page.fill("#f-starts_at", _local(start))
    await page.fill("#f-ends_at", _local(start - timedelta(days=1)))
    async with page.expect_response(lambda r: r.request.method == "POST") as answered:
        await page.click("form[action='/console/campaigns'] button[type=submit]")
    assert (await answered.value).status == 422
    await expect(page.get_by_role("alert")).to_be_visible()
    await expect(page.locator("#f-name")).to_have_value("Ends before it starts")
    await snap(page, "campaign refused")


PAGES = (
    "rewards",
    "stamp-cards",
    "challenges",
    "surprises",
    "segments",
    "partners",
    "settlement?from=2026-01-01&to=2027-01-01",
    "dead-letters",
)


async def test_every_program_page_opens_and_passes_axe(pipeline: Pipeline, page: Page) -> None:
    await _sign_in(page, pipeline)
    for path in PAGES:
        response = await page.goto(f"{pipeline.env.console_url}/{path}")
        assert response is not None and response.status == 200, path
        assert await accessibility(page) == [], path
    await expect(page.get_by_text("fedelta dlq list")).to_be_visible()
    await snap(page, "dead letters")
