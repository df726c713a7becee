"""The program console in a real browser on the whole pipeline: the dev.env's staff account
signs in (a wrong password first gets the error), sees the dashboard (a KPI, both charts loaded
as images), finds a member the test enrolled and who bought something, opens their 360° page
and adjusts their points (+25, a reason): the ledger shows the entry and the notice the actor
points recorded. axe finds no serious violation on the dashboard nor on the 360° page.
Screenshots of each step under the test's artifacts. (Roles are the unit tests' business:
tests/unit/web/test_console_members.py.)"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.async_api import Page, expect

from fedelta_client import StackClient
from tests.e2e.conftest import Pipeline
from tests.support.browser import accessibility, snap
from tests.support.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

WITHIN = 90  # seconds: two cores shared with the whole stack


async def _sign_in(page: Page, pipeline: Pipeline, password: str | None = None) -> None:
    env = pipeline.env
    assert env.console_user and env.console_password, "dev.env names the console's account"
    await page.goto(f"{env.console_url}/sign-in")
    await page.fill("#username", env.console_user)
    await page.fill("#password", password or env.console_password)
    await page.click("form[action='/console/sign-in'] button[type=submit]")


async def _balance(pos: StackClient, customer: str) -> Any:
    response = await pos.balance(customer)
    return response.json() if response.status_code == 200 else None


async def _charts_loaded(page: Page) -> list[int]:
    """Each chart image's natural width: 0 for one the browser could not load or draw."""
    widths: list[int] = await page.eval_on_selector_all(
        "img[src^='/console/charts/']",
        "images => images.map(image => image.complete ? image.naturalWidth : 0)",
    )
    return widths


async def test_staff_find_a_member_and_adjust_their_points(
    pipeline: Pipeline, pos: StackClient, page: Page
) -> None:
    customer = f"c-console-{uuid.uuid4().hex[:10]}"
    await pos.enrol(customer, f"{customer}@example.com")
    await pos.purchase(customer, "120.00")

    await _sign_in(page, pipeline, password="not-the-password-at-all")
    await expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    await snap(page, "wrong password")
    await _sign_in(page, pipeline)
    await expect(page).to_have_url(pipeline.env.console_url)

    await expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    await expect(page.locator("#kpi-active-members")).to_have_text(re.compile(r"^[0-9,]+$"))
    await page.wait_for_load_state("load")  # the charts are images: loaded with the page
    assert await eventually(lambda: _charts_without_failure(page), what="two charts drawn")
    assert await accessibility(page) == []
    await snap(page, "dashboard")

    await eventually(lambda: _balance(pos, customer), within=WITHIN, what="points know them")
    await page.click("nav >> text=Members")
    await page.fill("#q", customer)
    await page.click("form[role=search] button[type=submit]")
    await snap(page, "member found")
    await page.click(f"main >> text={customer}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Member {customer}")
    await expect(page.locator("#available")).to_be_visible()
    assert await accessibility(page) == []
    await snap(page, "the 360 page")

    reason = f"Goodwill {uuid.uuid4().hex[:6]}"
    await page.fill("#adjust-points", "25")
    await page.fill("#adjust-reason", reason)
    await snap(page, "adjustment typed")
    await page.click("form[action$='/adjustments'] button[type=submit]")
    user = pipeline.env.console_user
    await expect(page.get_by_role("status").first).to_have_text(
        f"Points adjusted, recorded as console:staff:{user}."
    )
    row = page.locator("#ledger tbody tr", has_text=reason)
    await expect(row).to_contain_text("+25")
    await expect(row).to_contain_text("adjust")
    await snap(page, "adjusted")

    entries = (await pos.ledger(customer)).json()["entries"]
    assert [entry["points"] for entry in entries if entry["reason"] == reason] == [25]


async def _charts_without_failure(page: Page) -> bool | None:
    widths = await _charts_loaded(page)
    assert len(widths) == 2, widths
    return all(widths) or None
