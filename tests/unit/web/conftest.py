"""The browser fixtures (tests/support/browser.py) for the web's tests that run in Chromium
without the stack (marked `browser`: `make test` runs them, `make unit` leaves them out)."""

from tests.support.browser import (  # noqa: F401 (fixtures and the hook, registered by import)
    browser,
    new_page,
    page,
    page_options,
    pytest_runtest_makereport,
)
