"""The browser harness itself (tests/support/browser.py), on pages a tiny local server serves
with a Content-Security-Policy as strict as the web's: Debian's Chromium fills and submits a
form, axe finds nothing on an accessible page and finds the unlabelled input and the faint
text of another, the phone viewport and the locale reach the page, and the screenshots are
real PNG files where the harness says."""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal, cast

import pytest
from playwright.async_api import Browser, Page, expect

from tests.support.browser import (
    ARTIFACTS_KEY,
    REPORT_SECTION,
    Artifacts,
    PageOptions,
    Pages,
    accessibility,
    pytest_runtest_makereport,
    snap,
)

pytestmark = pytest.mark.browser

CSP = "default-src 'none'; style-src 'self'; form-action 'self'"
CSS = (
    b"body { font-family: sans-serif; color: #1a1a1a; background: #fff }\n.faint { color: #ddd }\n"
)
HEAD = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    '<title>{title}</title><link rel="stylesheet" href="/site.css"></head><body><main>'
)
FORM = (
    HEAD.format(title="Join") + '<h1>Join the programme</h1><form method="post" action="/form">'
    '<label for="name">Your name</label> <input id="name" name="name" autocomplete="name">'
    ' <button type="submit">Join</button></form></main></body></html>'
)
POOR = (
    HEAD.format(title="Offers") + '<h1>Offers</h1><p class="faint">Double points this week</p>'
    '<form><input name="q"> <button type="submit">Search</button></form></main></body></html>'
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class Site:
    url: str
    submitted: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)


def handler_for(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/site.css":
                self.answer(CSS, "text/css")
            elif self.path == "/form":
                self.answer(FORM.encode(), "text/html")
            elif self.path == "/poor":
                self.answer(POOR.encode(), "text/html")
            elif self.path == "/language":
                site.languages.append(self.headers.get("Accept-Language", ""))
                page = HEAD.format(title="Language") + "<h1>Language</h1></main></body></html>"
                self.answer(page.encode(), "text/html")
            else:
                self.send_error(404)

        def do_POST(self) -> None:
            length = min(int(self.headers.get("Content-Length", "0")), 4096)
            fields = urllib.parse.parse_qs(self.rfile.read(length).decode())
            name = fields.get("name", [""])[0]
            site.submitted.append(name)
            page = (
                HEAD.format(title="Welcome")
                + f"<h1>Welcome, {escape(name)}</h1></main></body></html>"
            )
            self.answer(page.encode(), "text/html")

        def answer(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"{content_type}; charset=utf-8")
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    site = Site(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(site))
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


def png_width(path: Path) -> int:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big")


def names_in(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


async def test_chromium_fills_and_submits_a_form(page: Page, site: Site) -> None:
    await page.goto(f"{site.url}/form")
    form = await snap(page, "form")
    await page.get_by_label("Your name").fill("Ada <Lovelace>")
    await page.get_by_role("button", name="Join").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Ada <Lovelace>")
    assert site.submitted[-1] == "Ada <Lovelace>"
    welcome = await snap(page, "welcome!")
    assert [form.name, welcome.name] == ["01-form.png", "02-welcome.png"]
    assert form.parent.name == "test_browser_harness.test_chromium_fills_and_submits_a_form"
    assert png_width(form) == png_width(welcome) == 1280


async def test_an_accessible_page_has_no_serious_violation(page: Page, site: Site) -> None:
    await page.goto(f"{site.url}/form")
    assert await accessibility(page) == []


async def test_an_unlabelled_input_and_faint_text_are_found(page: Page, site: Site) -> None:
    await page.goto(f"{site.url}/poor")
    violations = await accessibility(page)
    assert {v.rule for v in violations} == {"label", "color-contrast"}, violations
    assert {v.impact for v in violations} <= {"serious", "critical"}
    assert any("input" in target for v in violations for target in v.targets)
    # Once in, the engine is not injected again: a second check gives the same answer.
    assert await accessibility(page) == violations


@pytest.mark.parametrize(
    "page_options", [PageOptions(viewport="phone", locale="it-IT")], ids=["phone-it"]
)
async def test_a_phone_in_italian(page: Page, site: Site) -> None:
    await page.goto(f"{site.url}/language")
    assert await page.evaluate("() => [innerWidth, navigator.language]") == [390, "it-IT"]
    assert site.languages[-1].startswith("it-IT")
    assert png_width(await snap(page, "phone")) == 390 * 2


async def test_every_page_leaves_its_last_screenshot(browser: Browser, tmp_path: Path) -> None:
    pages = Pages(browser, Artifacts(tmp_path))
    for options in (PageOptions(), PageOptions(viewport="phone")):
        opened = await pages.open(options)
        await opened.set_content(HEAD.format(title="Bye") + "<h1>Bye</h1></main></body></html>")
    await pages.close()
    assert names_in(tmp_path) == ["01-end.png", "02-end.png"]
    assert png_width(tmp_path / "02-end.png") == 390 * 2


def test_a_failed_report_says_where_the_screenshots_are(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    request.node.stash[ARTIFACTS_KEY] = Artifacts(tmp_path, taken=[tmp_path / "01-form.png"])

    def report_of(outcome: Literal["passed", "failed"]) -> pytest.TestReport:
        hook = pytest_runtest_makereport(request.node, cast(pytest.CallInfo[None], None))
        next(hook)
        with pytest.raises(StopIteration) as done:
            hook.send(pytest.TestReport("x", ("x", 0, "x"), {}, outcome, None, "call"))
        report: pytest.TestReport = done.value.value
        return report

    failed = dict(report_of("failed").sections)
    assert f"{tmp_path}/: 01-form.png" in failed[REPORT_SECTION]
    assert REPORT_SECTION not in dict(report_of("passed").sections)
