"""The API docs without a CDN (issue 19): /docs loads Swagger UI from the service itself,
under a Content-Security-Policy that allows nothing from elsewhere and no inline script."""

from __future__ import annotations

import hashlib
import re

import pytest

from shared.web.docs import ASSET_TYPES, ASSETS_DIR
from tests.support.service_apps import CREATE_APPS, client_of, service_app

# What a URL pointing elsewhere looks like: a scheme, or a protocol-relative //host.
EXTERNAL = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://|(?:src|href)\s*=\s*[\"']//")


def referenced(page: str) -> list[str]:
    return re.findall(r"""(?:src|href|data-openapi-url)="([^"]*)\"""", page)


@pytest.mark.parametrize("service", list(CREATE_APPS))
async def test_the_docs_page_and_everything_it_loads_come_from_the_service(service: str) -> None:
    async with client_of(service_app(service)) as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert not EXTERNAL.search(page.text), page.text
        urls = referenced(page.text)
        assert len(urls) == 5, urls  # css, icon, the document, two scripts
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
            answer = await client.get(url)
            assert answer.status_code == 200, url
            if url == "/openapi.json":
                assert answer.headers["content-type"] == "application/json"
                assert answer.json()["info"]["title"] == f"Fedelta {service}"
                continue
            expected = {"js": "text/javascript", "css": "text/css", "png": "image/png"}
            kind = expected[url.rsplit(".", 1)[1]]
            assert answer.headers["content-type"].split(";")[0] == kind, url
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.content == (ASSETS_DIR / url.rsplit("/", 1)[1]).read_bytes()


async def test_the_page_may_run_its_own_scripts_and_styles_only() -> None:
    async with client_of(service_app("points")) as client:
        page = await client.get("/docs")
    csp = {
        directive.split()[0]: directive.split()[1:]
        for directive in page.headers["content-security-policy"].split(";")
    }
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]  # no 'unsafe-inline': the page has no inline script
    assert csp["style-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert "<script>" not in page.text and "style=" not in page.text
    assert page.headers["cache-control"] == "no-store"


async def test_redoc_fastapis_own_pages_and_unknown_assets_are_not_served() -> None:
    async with client_of(service_app("tiers")) as client:
        for path in (
            "/redoc",
            "/docs/oauth2-redirect",
            "/docs/assets/nothing.js",
            "/docs/assets/README.md",
            "/docs/assets/..%2Fdocs.py",
            "/docs/assets/swagger-ui-bundle.js.map",
        ):
            assert (await client.get(path)).status_code == 404, path


def test_the_starting_script_calls_nowhere_else() -> None:
    script = (ASSETS_DIR / "init.js").read_text()
    assert not EXTERNAL.search(script)
    assert "validatorUrl: null" in script


def test_the_pinned_swagger_ui_is_the_one_the_readme_names_with_its_licence() -> None:
    readme = (ASSETS_DIR / "README.md").read_text()
    sums = dict(
        (name, digest) for digest, name in re.findall(r"^\s+([0-9a-f]{64})  (\S+)$", readme, re.M)
    )
    assert set(sums) == {"swagger-ui-bundle.js", "swagger-ui.css"}
    for name, digest in sums.items():
        assert hashlib.sha256((ASSETS_DIR / name).read_bytes()).hexdigest() == digest, name
    assert "Apache License" in (ASSETS_DIR / "LICENSE").read_text()
    assert (ASSETS_DIR / "NOTICE").is_file()
    for name in ASSET_TYPES:
        assert (ASSETS_DIR / name).is_file(), name
