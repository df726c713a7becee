"""Browser tests in a real headless Chromium: Debian's (deploy/local/chromium.sh installs it),
driven by the Python `playwright` package through `executable_path` (Playwright never downloads
a browser here), with axe-core (deploy/local/node-tools.sh fetches it) for accessibility.

Fixtures (a conftest registers them by importing them, with the report hook below):
- `browser`: one Chromium per session, headless (`--no-sandbox` when root: Chromium refuses to
  start its sandbox as root).
- `page`: a page in a fresh context (no cookies, no storage) per test, as `page_options` says:
  parametrize `page_options` to change the locale or the viewport (phone or desktop).
- `new_page`: opens more pages, each in its own context, for a test that needs several people
  (a member on a phone and staff on a desktop).

Every page of a test saves a full-page PNG when the test asks (`await snap(page, name)`) and one
more as it was when the test ended, under <test state dir>/artifacts/<module>.<test>/ (the
directory is emptied when the test starts); a failed test's report says where they are.
`await accessibility(page)` runs axe on the page and returns its serious and critical
violations of WCAG 2.1 A and AA."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
from playwright.async_api import Browser, BrowserContext, Error, Page, async_playwright

from tests.support.stack import REPO, Stack

CHROMIUM_SH = REPO / "deploy" / "local" / "chromium.sh"
NODE_TOOLS_SH = REPO / "deploy" / "local" / "node-tools.sh"
INSTALL_HINT = (
    "run deploy/local/chromium.sh install and deploy/local/node-tools.sh install (make test-tools)"
)

# A common phone (CSS pixels, at twice the density) and a laptop's window.
VIEWPORTS: dict[str, dict[str, Any]] = {
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
    "desktop": {"viewport": {"width": 1280, "height": 800}},
}
# An action or an expectation waits this long before failing (Playwright's default is 30 s).
TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class PageOptions:
    """What a test's browser context looks like: `locale` sets navigator.language and the
    Accept-Language header; `base_url` lets `page.goto("/wallet")` take relative paths."""

    locale: str = "en-GB"
    viewport: Literal["phone", "desktop"] = "desktop"
    time_zone: str = "Europe/Rome"
    base_url: str | None = None

    def context_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"locale": self.locale, "timezone_id": self.time_zone}
        if self.base_url is not None:
            args["base_url"] = self.base_url
        return args | VIEWPORTS[self.viewport]


# --- where the tools are ----------------------------------------------------------------------


def _script_answer(script: Path, *args: str) -> Path:
    answer = subprocess.run([str(script), *args], check=True, capture_output=True, text=True)
    return Path(answer.stdout.strip())


def chromium_executable() -> Path:
    """The binary deploy/local/chromium.sh installed (FEDELTA_CHROMIUM overrides it)."""
    path = _script_answer(CHROMIUM_SH, "path")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no Chromium at {path}: {INSTALL_HINT}", pytrace=False)
    return path


@functools.cache
def axe_source() -> str:
    path = _script_answer(NODE_TOOLS_SH, "axe-path")
    if not path.is_file():
        pytest.fail(f"no axe-core at {path}: {INSTALL_HINT}", pytrace=False)
    return path.read_text(encoding="utf-8")


def launch_args() -> list[str]:
    return ["--no-sandbox"] if os.geteuid() == 0 else []


# --- screenshots ------------------------------------------------------------------------------


def artifacts_root() -> Path:
    return Stack.from_env().state_dir / "artifacts"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:120] or "unnamed"


@dataclass
class Artifacts:
    """One test's screenshots, numbered in the order they were taken."""

    directory: Path
    taken: list[Path] = field(default_factory=list)

    @classmethod
    def for_test(cls, item: pytest.Item) -> Artifacts:
        directory = artifacts_root() / _slug(f"{item.path.stem}.{item.name}")
        # A previous run's screenshots would pass for this run's.
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        return cls(directory)

    async def save(self, page: Page, name: str) -> Path:
        path = self.directory / f"{len(self.taken) + 1:02d}-{_slug(name)}.png"
        self.taken.append(path)
        await page.screenshot(path=path, full_page=True)
        return path

    def describe(self) -> str:
        names = ", ".join(path.name for path in self.taken) or "none asked for"
        return f"screenshots in {self.directory}/: {names}; then *-end.png of each page at the end"


# Which test's artifacts a page's context belongs to: snap() needs only the page.
_ARTIFACTS: weakref.WeakKeyDictionary[BrowserContext, Artifacts] = weakref.WeakKeyDictionary()
ARTIFACTS_KEY = pytest.StashKey[Artifacts]()
REPORT_SECTION = "browser artifacts"


async def snap(page: Page, name: str) -> Path:
    """A full-page PNG of the page as it is now, kept with the test's artifacts."""
    artifacts = _ARTIFACTS.get(page.context)
    if artifacts is None:
        raise LookupError("snap() takes the pages of the `page` and `new_page` fixtures")
    return await artifacts.save(page, name)


class Pages:
    """The pages a test opened, each in its own context; `close` takes the last screenshot of
    each page and closes them."""

    def __init__(self, browser: Browser, artifacts: Artifacts) -> None:
        self.browser = browser
        self.artifacts = artifacts
        self.contexts: list[BrowserContext] = []

    async def open(self, options: PageOptions) -> Page:
        context = await self.browser.new_context(**options.context_args())
        context.set_default_timeout(TIMEOUT_MS)
        _ARTIFACTS[context] = self.artifacts
        self.contexts.append(context)
        return await context.new_page()

    async def close(self) -> None:
        for context in self.contexts:
            for page in context.pages:
                # A crashed or closed page has no picture left to take.
                with contextlib.suppress(Error):
                    await self.artifacts.save(page, "end")
            await context.close()
        self.contexts.clear()


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, one for the session."""
    executable = chromium_executable()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=launch_args()
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def page_options() -> PageOptions:
    """Desktop, British English: parametrize this fixture for other pages."""
    return PageOptions()


@pytest.fixture
async def new_page(
    browser: Browser, request: pytest.FixtureRequest
) -> AsyncIterator[Callable[[PageOptions], Awaitable[Page]]]:
    """`await new_page(PageOptions(...))`: one more page, in a context of its own."""
    artifacts = Artifacts.for_test(request.node)
    request.node.stash[ARTIFACTS_KEY] = artifacts
    pages = Pages(browser, artifacts)
    try:
        yield pages.open
    finally:
        await pages.close()


@pytest.fixture
async def page(
    new_page: Callable[[PageOptions], Awaitable[Page]], page_options: PageOptions
) -> Page:
    """A page in a fresh context, as `page_options` says; screenshotted when the test ends."""
    return await new_page(page_options)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed browser test's report says where its screenshots are."""
    report = yield
    artifacts = item.stash.get(ARTIFACTS_KEY, None)
    if (
        artifacts is not None
        and report.failed
        and all(title != REPORT_SECTION for title, _ in report.sections)
    ):
        report.sections.append((REPORT_SECTION, artifacts.describe()))
    return report


# --- accessibility ----------------------------------------------------------------------------

WCAG_21_AA_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
SERIOUS_IMPACTS = frozenset({"serious", "critical"})
_RUN_AXE = """async (options) => {
    const result = await axe.run(document, options);
    return result.violations.map((v) => ({
        rule: v.id, impact: v.impact || "", help: v.help,
        targets: v.nodes.map((n) => n.target.flat(Infinity).join(" ")),
    }));
}"""


@dataclass(frozen=True)
class Violation:
    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.rule} ({self.impact}): {self.help} at {', '.join(self.targets)}"


async def accessibility(page: Page) -> list[Violation]:
    """axe-core's serious and critical violations of WCAG 2.1 A and AA on the page as it is.
    The engine goes in through the DevTools protocol, which a page's Content-Security-Policy
    does not stop (a script tag would be), and stays for the page's next checks."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(axe_source())
    options = {
        "runOnly": {"type": "tag", "values": list(WCAG_21_AA_TAGS)},
        "resultTypes": ["violations"],
    }
    found = await page.evaluate(_RUN_AXE, options)
    return [
        Violation(item["rule"], item["impact"], item["help"], tuple(item["targets"]))
        for item in found
        if item["impact"] in SERIOUS_IMPACTS
    ]


async def assert_accessible(page: Page) -> None:
    __tracebackhide__ = True
    violations = await accessibility(page)
    assert not violations, f"{page.url}:\n" + "\n".join(f"  {v}" for v in violations)
