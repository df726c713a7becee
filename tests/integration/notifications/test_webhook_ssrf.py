"""Issue 19, webhook SSRF on the real service: URLs at loopback, unspecified, link-local
(metadata) and private addresses, or plain http, are refused at registration with a 422
naming `url`; a stored URL that now points at this machine (as after a DNS change) is never
called: its delivery fails for good as "refused", and the log says nothing of the port."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.adapters import tables
from services.notifications.settings import NotificationsSettings
from shared.messaging import topics
from tests.support import factories
from tests.support.notifications import delivering_settings, send
from tests.support.polling import eventually
from tests.support.services import ADMIN, READER
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(stack: Stack) -> NotificationsSettings:
    # No allow-list: what production runs with.
    return delivering_settings(stack, max_delivery_attempts="2", retry_backoff_seconds="0.1")


@pytest.fixture(scope="module")
def listener() -> Iterator[tuple[int, list[str]]]:
    """A server on this machine's loopback that records any call made to it."""
    calls: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            calls.append(self.path)
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield server.server_address[1], calls
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://0.0.0.0:8083/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.7/hook",
        "https://192.168.1.20/hook",
        "https://localhost/hook",  # a name that resolves to loopback
        "http://partner.example.com/hook",  # plain http for a host not allow-listed
    ],
)
async def test_a_webhook_url_this_service_must_not_call_is_refused_at_registration(
    client: httpx.AsyncClient, url: str
) -> None:
    partner_id = f"p-{uuid.uuid4().hex[:12]}"
    refused = await client.put(
        f"/v1/partners/{partner_id}/webhook", json={"url": url}, headers=ADMIN
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["detail"].startswith("url: ")
    assert refused.json()["errors"][0]["loc"] == ["body", "url"]
    gone = await client.get(f"/v1/partners/{partner_id}/webhook", headers=ADMIN)
    assert gone.status_code == 404


async def test_a_public_https_url_is_still_registered(client: httpx.AsyncClient) -> None:
    partner_id = f"p-{uuid.uuid4().hex[:12]}"
    url = "https://93.184.215.14/fedelta/events"
    registered = await client.put(
        f"/v1/partners/{partner_id}/webhook", json={"url": url}, headers=ADMIN
    )
    assert registered.status_code == 201, registered.text


async def settled(client: httpx.AsyncClient, customer_id: str, channel: str) -> dict[str, Any]:
    """The customer's one message on `channel`, once it is no longer scheduled."""

    async def probe() -> dict[str, Any] | None:
        response = await client.get(f"/v1/customers/{customer_id}/notifications", headers=READER)
        if response.status_code == 404:
            return None
        found = [i for i in response.json()["items"] if i["channel"] == channel]
        if len(found) == 1 and found[0]["status"] != "scheduled":
            item: dict[str, Any] = found[0]
            return item
        return None

    return await eventually(probe, within=60, what=f"the {channel} message of {customer_id}")


async def _stored_webhook(stack: Stack, database: AsyncEngine, partner_id: str, url: str) -> None:
    """A URL stored before this service checked them, or a name since rebound."""
    async with database.begin() as conn:
        await conn.execute(
            sa.insert(tables.partner_webhooks).values(
                partner_id=partner_id,
                url=url,
                secret=stack.sealed_as_stored("notifications", partner_id, "s" * 32),
                created_at=sa.func.now(),
                updated_at=sa.func.now(),
            )
        )


@pytest.mark.parametrize("open_port", [True, False])
async def test_a_stored_url_at_this_machine_is_never_called_and_logged_as_refused(
    stack: Stack,
    client: httpx.AsyncClient,
    database: AsyncEngine,
    listener: tuple[int, list[str]],
    open_port: bool,
) -> None:
    port, calls = listener
    partner_id = f"p-{uuid.uuid4().hex[:12]}"
    target = port if open_port else closed_port()
    await _stored_webhook(
        stack, database, partner_id, f"https://localhost:{target}/hooks/{partner_id}"
    )
    customer_id = f"cust-{uuid.uuid4().hex}"
    await send(stack, topics.CUSTOMERS, factories.enrolment(customer_id, partner_id=partner_id))

    item = await settled(client, customer_id, "webhook")
    assert item["status"] == "failed"
    # Open or closed, the same word: the log does not tell which ports listen.
    assert item["reason"] == "refused"
    assert item["attempts"] == 1  # permanent: never retried
    assert calls == []
    shown = await client.get(f"/v1/customers/{customer_id}/notifications", headers=READER)
    assert str(target) not in shown.text
