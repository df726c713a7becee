"""Security headers on every answer of every service (issue 19): nosniff, a CSP that loads
nothing and forbids framing, no referrer, no caching of member data, and no `Server` header
telling what answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Response

from shared.runtime.http_limits import _TOO_LARGE
from shared.runtime.serving import server_config
from shared.web.http import create_service_app
from shared.web.security_headers import API_CSP, SecurityHeaders, with_security_headers
from tests.support.service_apps import CREATE_APPS, client_of, service_app, service_settings

EXPECTED = {
    "x-content-type-options": "nosniff",
    "content-security-policy": API_CSP,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def assert_secured(response: httpx.Response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get_list(name) == [value], (response.request.url, name)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "server" not in response.headers


@pytest.mark.parametrize("service", list(CREATE_APPS))
async def test_every_answer_of_every_service_carries_the_headers(service: str) -> None:
    async with client_of(service_app(service)) as client:
        answers = [
            await client.get("/healthz"),  # 200
            await client.get("/v1/no-such-thing"),  # 404
            await client.delete("/healthz"),  # 405
            await client.get("/openapi.json"),  # 200, the document
            await client.get("/metrics"),  # 200, text
        ]
    assert [a.status_code for a in answers] == [200, 404, 405, 200, 200]
    for answer in answers:
        assert_secured(answer)


async def test_a_crash_answered_by_the_error_middleware_carries_them_too() -> None:
    crash = APIRouter()

    @crash.get("/crash")
    async def crashes() -> None:
        raise RuntimeError("boom")

    app = create_service_app(
        name="t",
        settings=service_settings("tiers"),
        bootstrap=_no_bootstrap,
        routers=[crash],
    )
    async with client_of(app) as client:
        answer = await client.get("/crash")
    assert answer.status_code == 500
    assert_secured(answer)


async def test_a_header_the_answer_sets_itself_is_kept_and_not_doubled() -> None:
    own = APIRouter()

    @own.get("/cached")
    async def cached(response: Response) -> dict[str, str]:
        response.headers["Cache-Control"] = "private, max-age=5"
        return {}

    app = create_service_app(
        name="t", settings=service_settings("tiers"), bootstrap=_no_bootstrap, routers=[own]
    )
    async with client_of(app) as client:
        answer = await client.get("/cached")
    assert answer.headers.get_list("cache-control") == ["private, max-age=5"]
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_headers_are_appended_to_a_new_list_once() -> None:
    theirs = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    ours = with_security_headers(theirs)
    assert ours[:2] == theirs and len(theirs) == 2
    names = [name for name, _ in ours]
    assert len(names) == len(set(names)) == 2 + len(EXPECTED)
    assert with_security_headers(ours) == ours


async def test_websocket_and_lifespan_scopes_pass_untouched() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await SecurityHeaders(app)({"type": "lifespan"}, _never, _never)
    assert seen == ["lifespan"]


def test_uvicorn_sends_no_server_header() -> None:
    config = server_config("services.tiers.api.app:create_app_from_environment", _tiers())
    assert config.server_header is False


def test_the_431_written_by_the_server_itself_carries_them() -> None:
    head = _TOO_LARGE.split(b"\r\n\r\n")[0].decode().lower()
    assert "x-content-type-options: nosniff" in head
    assert "frame-ancestors 'none'" in head
    assert "cache-control: no-store" in head


def _tiers() -> Any:
    return service_settings("tiers")


async def _no_bootstrap(settings: Any) -> Any:
    raise AssertionError("no lifespan runs in these tests")


async def _never(*args: Any) -> Any:
    raise AssertionError("not called")
