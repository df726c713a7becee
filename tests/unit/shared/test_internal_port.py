"""/metrics, /docs and /openapi.json on an internal port (issue 19): with
`FEDELTA_<NAME>_INTERNAL_PORT` set, the public port answers 404 for them, as for a path that
does not exist, and the internal port serves them and the probes, nothing else; unset,
everything stays on one port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import ValidationError

from shared.runtime.serving import listeners, server_config
from shared.web.internal_port import served_on
from tests.support.polling import eventually
from tests.support.service_apps import CREATE_APPS, client_of, service_app, service_settings

PUBLIC, INTERNAL = 8080, 9100
INTERNAL_PATHS = ["/metrics", "/openapi.json", "/docs", "/docs/assets/init.js"]
WITHIN = 10.0


def assert_not_found(answer: httpx.Response) -> None:
    assert answer.status_code == 404, answer.request.url
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "urn:fedelta:problem:not-found"


@pytest.mark.parametrize("service", list(CREATE_APPS))
async def test_the_internal_paths_leave_the_public_port(service: str) -> None:
    app = service_app(service, port=PUBLIC, internal_port=INTERNAL)
    async with client_of(app, PUBLIC) as public, client_of(app, INTERNAL) as internal:
        unknown = await public.get("/v1/no-such-thing")
        for path in INTERNAL_PATHS:
            hidden = await public.get(path)
            assert_not_found(hidden)
            assert hidden.json() == unknown.json()  # nothing tells the path exists
            assert (await internal.get(path)).status_code == 200, path
        assert (await public.get("/healthz")).status_code == 200
        assert (await internal.get("/healthz")).status_code == 200
        # The internal port serves no API call (nor does the public port's 404 leak there).
        assert_not_found(await internal.get("/v1/no-such-thing"))
        assert_not_found(await internal.post("/v1/admin/jobs/anything"))


@pytest.mark.parametrize("service", list(CREATE_APPS))
async def test_unset_everything_stays_on_one_port(service: str) -> None:
    app = service_app(service, port=PUBLIC)
    async with client_of(app, PUBLIC) as client:
        for path in INTERNAL_PATHS:
            assert (await client.get(path)).status_code == 200, path


def test_which_port_serves_what() -> None:
    for path in ("/metrics", "/openapi.json", "/docs", "/docs/assets/swagger-ui.css"):
        assert served_on(path, internal_port=True) and not served_on(path, internal_port=False)
    for path in ("/healthz", "/readyz"):
        assert served_on(path, internal_port=True) and served_on(path, internal_port=False)
    for path in ("/v1/purchases", "/v1/admin/jobs/x", "/metricsx", "/docsx", "/"):
        assert served_on(path, internal_port=False) and not served_on(path, internal_port=True)


def test_the_setting_is_a_port_apart_from_the_public_one() -> None:
    assert service_settings("points").internal_port is None
    assert service_settings("points", internal_port=9101).internal_port == 9101
    for wrong in (0, 70000):
        with pytest.raises(ValidationError, match="internal_port"):
            service_settings("points", internal_port=wrong)
    with pytest.raises(ValidationError, match="internal_port must differ from port"):
        service_settings("points", port=9101, internal_port=9101)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def two_ports() -> AsyncIterator[tuple[int, int]]:
    """The tiers app on a real uvicorn server, on the sockets `serve` binds: both ports."""
    public, internal = free_port(), free_port()
    settings = service_settings("tiers", port=public, internal_port=internal)
    sockets = listeners(settings)
    assert [s.getsockname()[1] for s in sockets] == [public, internal]
    config = server_config(CREATE_APPS["tiers"](settings), settings)
    config.lifespan, config.loop = "off", "asyncio"  # no runtime: probes and docs only
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=sockets))

    async def started() -> bool | None:
        return True if server.started else None

    await eventually(started, within=WITHIN, interval=0.01, what="the server to listen")
    yield public, internal
    server.should_exit = True
    await asyncio.wait_for(task, WITHIN)
    for sock in sockets:
        sock.close()


async def test_one_server_tells_its_two_sockets_apart(two_ports: tuple[int, int]) -> None:
    public, internal = two_ports
    async with httpx.AsyncClient(timeout=WITHIN) as client:
        for path in INTERNAL_PATHS:
            assert_not_found(await client.get(f"http://127.0.0.1:{public}{path}"))
            on_internal = await client.get(f"http://127.0.0.1:{internal}{path}")
            assert on_internal.status_code == 200, path
            assert "server" not in on_internal.headers
            assert on_internal.headers["x-content-type-options"] == "nosniff"
        assert (await client.get(f"http://127.0.0.1:{public}/healthz")).status_code == 200
        assert (await client.get(f"http://127.0.0.1:{internal}/healthz")).status_code == 200
        assert_not_found(await client.get(f"http://127.0.0.1:{internal}/v1/customers/x/tier"))
        # A Host header naming the internal port changes nothing: the socket decides.
        spoofed: dict[str, Any] = {"headers": {"Host": f"127.0.0.1:{internal}"}}
        assert_not_found(await client.get(f"http://127.0.0.1:{public}/metrics", **spoofed))
