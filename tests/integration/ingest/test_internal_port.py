"""The internal port on a real ingest process with two uvicorn workers (issue 19): both
workers serve both sockets; /metrics, /docs and /openapi.json answer on the internal port
and 404 on the public one, whichever worker takes the connection."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.polling import eventually
from tests.support.stack import REPO, Stack

INTERNAL_PATHS = ["/metrics", "/openapi.json", "/docs", "/docs/assets/swagger-ui.css"]
# New connections each time: the kernel hands them to either worker.
CONNECTIONS = 12


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def ports(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    stack.migrate("ingest")
    public, internal = free_port(), free_port()
    env = os.environ | stack.service_env("ingest", public)
    env |= {
        "FEDELTA_INGEST_INTERNAL_PORT": str(internal),
        "FEDELTA_INGEST_WORKERS": "2",
        "FEDELTA_INGEST_RUN_WORKERS": "false",  # the API alone: nothing consumed or relayed
    }
    log = Path(tmp_path_factory.mktemp("ingest")) / "ingest.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.ingest", "serve"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers in its group, stopped with it below
        )
    try:
        yield public, internal
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        print(log.read_text(errors="replace")[-4000:])


async def status(port: int, path: str) -> int:
    async with httpx.AsyncClient(timeout=10) as client:  # a connection of its own
        return (await client.get(f"http://127.0.0.1:{port}{path}")).status_code


async def test_two_workers_serve_the_internal_paths_on_the_internal_port_only(
    ports: tuple[int, int],
) -> None:
    public, internal = ports

    async def up() -> bool:
        try:
            return await status(public, "/healthz") == 200
        except httpx.TransportError:
            return False

    await eventually(up, within=90, interval=0.2, what="ingest to answer on its port")
    assert await status(internal, "/healthz") == 200
    for _ in range(CONNECTIONS):
        for path in INTERNAL_PATHS:
            assert await status(public, path) == 404, path
            assert await status(internal, path) == 200, path
        assert await status(internal, "/v1/admin/partners") == 404
        assert await status(public, "/v1/admin/partners") == 401
    async with httpx.AsyncClient(timeout=10) as client:
        scraped = await client.get(f"http://127.0.0.1:{internal}/metrics")
    assert "fedelta_http_request_seconds" in scraped.text
    assert "server" not in scraped.headers
