"""SMS and partner webhooks on the real stack: events in from Kafka, SMS out to the fake
provider (deploy/local/smscatcher.py), webhook calls out to a real HTTP receiver that checks
their signatures; each delivered once, and once still when the far end fails twice first."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.notifications.domain.model import Channel
from services.notifications.handlers import welcome_id
from services.notifications.settings import NotificationsSettings
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent, new_event
from shared.web.auth import SIGNATURE_HEADER, SignatureError, verify_signature
from tests.support import factories
from tests.support.notifications import delivering_settings, send
from tests.support.polling import eventually
from tests.support.services import ADMIN, READER
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(stack: Stack) -> NotificationsSettings:
    # A short backoff: these tests are about retries too. The receiver below is this
    # machine's own (plain http on 127.0.0.1): allow-listed, as only tests and the local stack do.
    return delivering_settings(
        stack,
        retry_backoff_seconds="0.2",
        retry_backoff_max_seconds="1",
        webhook_allow_hosts="127.0.0.1",
    )


@dataclass
class Receiver:
    """A partner's webhook endpoint: checks each call's signature with the secret registered
    for its path, answers 503 to the first `failures[path]` calls, records them all."""

    url: str
    secrets: dict[str, str] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.calls if c["path"] == path and c["status"] == 204]

    def all_calls(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.calls if c["path"] == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path.split("?", 1)[0]
            try:
                verify_signature(
                    state.secrets.get(path, "unregistered"),
                    self.headers.get(SIGNATURE_HEADER, ""),
                    "POST",
                    self.path,
                    body,
                    datetime.now(UTC),
                )
                signed = True
            except SignatureError:
                signed = False
            with state.lock:
                failing = state.failures.get(path, 0)
                if failing:
                    state.failures[path] = failing - 1
                status = 401 if not signed else 503 if failing else 204
                state.calls.append(
                    {
                        "path": path,
                        "status": status,
                        "delivery_id": self.headers.get("Fedelta-Delivery-Id"),
                        "payload": json.loads(body),
                    }
                )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def new_customer() -> tuple[str, str]:
    token = uuid.uuid4().hex
    # A phone number of its own per test: the fake provider fails on demand per number.
    return f"cust-{token}", f"+39{int(token[:12], 16) % 10**10:010d}"


def enrolment(
    customer_id: str,
    phone: str | None,
    *,
    consent_sms: bool,
    partner_id: str = "demo",
    locale: str = "it",
) -> CloudEvent:
    return factories.enrolment(
        customer_id,
        partner_id=partner_id,
        locale=locale,
        email=None,
        phone=phone,
        consent=events.Consent(email=False, sms=consent_sms),
    )


async def settled(
    client: httpx.AsyncClient, customer_id: str, channel: str, what: str
) -> dict[str, Any]:
    """The customer's one message on `channel`, once it is no longer scheduled."""

    async def probe() -> dict[str, Any] | None:
        response = await client.get(f"/v1/customers/{customer_id}/notifications", headers=READER)
        if response.status_code == 404:
            return None
        items: list[dict[str, Any]] = response.json()["items"]
        found = [i for i in items if i["channel"] == channel]
        if len(found) == 1 and found[0]["status"] != "scheduled":
            return found[0]
        return None

    return await eventually(probe, within=60, what=what)


def sms_to(stack: Stack, phone: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted(Path(stack.sms_dir).glob("*.json")):
        message: dict[str, Any] = json.loads(path.read_text())
        if message["to"] == phone:
            found.append(message)
    return found


async def test_an_sms_goes_to_the_provider_once_in_the_customers_language(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    customer_id, phone = new_customer()
    cause = enrolment(customer_id, phone, consent_sms=True)
    await send(stack, topics.CUSTOMERS, cause)

    item = await settled(client, customer_id, "sms", "the welcome SMS to be sent")
    notification_id = welcome_id(customer_id, Channel.SMS)
    assert (item["notification_id"], item["status"], item["attempts"]) == (
        notification_id,
        "sent",
        1,
    )
    (sms,) = sms_to(stack, phone)
    assert sms["text"] == "Fedelta: Benvenuto in Fedelta"
    assert sms["reference"] == sms["idempotency_key"] == notification_id
    email = await settled(client, customer_id, "email", "the welcome email to be decided")
    assert (email["status"], email["reason"]) == ("suppressed", "no email address")


async def test_an_sms_refused_twice_is_delivered_exactly_once(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    customer_id, phone = new_customer()
    async with httpx.AsyncClient() as http:
        answer = await http.put(
            f"http://127.0.0.1:{stack.sms_port}/v1/failures/{phone}",
            json={"count": 2, "status": 503},
        )
        assert answer.status_code == 200
    await send(stack, topics.CUSTOMERS, enrolment(customer_id, phone, consent_sms=True))

    item = await settled(client, customer_id, "sms", "the welcome SMS after two refusals")
    assert (item["status"], item["attempts"], item["reason"]) == ("sent", 3, None)
    assert len(sms_to(stack, phone)) == 1


async def test_no_sms_without_the_customers_consent(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    customer_id, phone = new_customer()
    await send(stack, topics.CUSTOMERS, enrolment(customer_id, phone, consent_sms=False))

    email = await settled(client, customer_id, "email", "the welcome email to be decided")
    assert email["status"] == "suppressed"
    response = await client.get(f"/v1/customers/{customer_id}/notifications", headers=READER)
    assert [i["channel"] for i in response.json()["items"]] == ["email"]
    assert sms_to(stack, phone) == []


async def register(
    client: httpx.AsyncClient, receiver: Receiver, partner_id: str
) -> tuple[str, str]:
    path = f"/hooks/{partner_id}"
    response = await client.put(
        f"/v1/partners/{partner_id}/webhook",
        json={"url": f"{receiver.url}{path}?source=fedelta"},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    secret: str = response.json()["secret"]
    receiver.secrets[path] = secret
    return path, secret


async def test_a_partner_registers_reads_and_deletes_its_webhook(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    partner_id = f"p-{uuid.uuid4().hex[:12]}"
    path, secret = await register(client, receiver, partner_id)
    assert len(secret) >= 32

    shown = await client.get(f"/v1/partners/{partner_id}/webhook", headers=ADMIN)
    assert shown.status_code == 200
    assert shown.json()["url"] == f"{receiver.url}{path}?source=fedelta"
    assert "secret" not in shown.json()

    moved = await client.put(
        f"/v1/partners/{partner_id}/webhook", json={"url": "https://example.com/x"}, headers=ADMIN
    )
    assert moved.status_code == 200 and "secret" not in moved.json()
    assert moved.json()["url"] == "https://example.com/x"

    for bad in ("ftp://example.com/x", "https://exa mple.com", "https://" + "a" * 2000, "x"):
        refused = await client.put(
            f"/v1/partners/{partner_id}/webhook", json={"url": bad}, headers=ADMIN
        )
        assert refused.status_code == 422, bad
    forbidden = await client.put(
        f"/v1/partners/{partner_id}/webhook", json={"url": "https://e.com/x"}, headers=READER
    )
    assert forbidden.status_code == 403

    assert (
        await client.delete(f"/v1/partners/{partner_id}/webhook", headers=ADMIN)
    ).status_code == 204
    gone = await client.get(f"/v1/partners/{partner_id}/webhook", headers=ADMIN)
    assert gone.status_code == 404
    assert gone.headers["content-type"].startswith("application/problem+json")


async def test_a_partner_gets_its_customers_events_signed_once(
    stack: Stack, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    partner_id = f"p-{uuid.uuid4().hex[:12]}"
    path, _ = await register(client, receiver, partner_id)
    customer_id, phone = new_customer()
    cause = enrolment(customer_id, phone, consent_sms=False, partner_id=partner_id)
    await send(stack, topics.CUSTOMERS, cause)

    item = await settled(client, customer_id, "webhook", "the welcome webhook call")
    assert (item["status"], item["attempts"]) == ("sent", 1)
    (call,) = receiver.all_calls(path)
    assert call["status"] == 204  # the receiver verified the signature
    assert call["delivery_id"] == item["notification_id"]
    payload = call["payload"]
    assert (payload["type"], payload["customer_id"], payload["partner_id"]) == (
        "welcome",
        customer_id,
        partner_id,
    )
    assert payload["cause_event_id"] == cause.id
    assert phone not in json.dumps(payload)


async def test_a_webhook_that_fails_twice_gets_the_call_exactly_once(
    stack: Stack, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    partner_id = f"p-{uuid.uuid4().hex[:12]}"
    path, _ = await register(client, receiver, partner_id)
    receiver.failures[path] = 2
    customer_id, phone = new_customer()
    await send(
        stack,
        topics.CUSTOMERS,
        enrolment(customer_id, phone, consent_sms=False, partner_id=partner_id),
    )

    item = await settled(client, customer_id, "webhook", "the webhook call after two failures")
    assert (item["status"], item["attempts"]) == ("sent", 3)
    calls = receiver.all_calls(path)
    assert [c["status"] for c in calls] == [503, 503, 204]
    assert {c["delivery_id"] for c in calls} == {item["notification_id"]}  # one call, retried
    assert len(receiver.accepted(path)) == 1


async def test_customers_of_a_partner_without_webhook_cause_no_call(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    customer_id, phone = new_customer()
    await send(
        stack,
        topics.CUSTOMERS,
        enrolment(customer_id, phone, consent_sms=False, partner_id=f"p-{uuid.uuid4().hex[:12]}"),
    )

    await settled(client, customer_id, "email", "the welcome email to be decided")
    response = await client.get(f"/v1/customers/{customer_id}/notifications", headers=READER)
    assert "webhook" not in {i["channel"] for i in response.json()["items"]}


async def test_a_lapsed_customer_is_won_back_on_every_channel_they_are_reachable_on(
    stack: Stack, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    partner_id = f"p-{uuid.uuid4().hex[:12]}"
    path, _ = await register(client, receiver, partner_id)
    customer_id, phone = new_customer()
    await send(
        stack,
        topics.CUSTOMERS,
        enrolment(customer_id, phone, consent_sms=True, partner_id=partner_id),
    )
    await settled(client, customer_id, "sms", "the welcome SMS")
    bought_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=200)
    await send(
        stack,
        topics.PURCHASES,
        new_event(
            events.PurchaseCompleted(
                purchase_id=f"p-{customer_id}",
                partner_id=partner_id,
                customer_id=customer_id,
                occurred_at=bought_at,
                currency="EUR",
                total=Decimal("20.00"),
            ),
            source=f"ingest/{partner_id}",
            subject=customer_id,
            time=bought_at,
        ),
    )
    as_of = bought_at + timedelta(days=91)

    async def won_back() -> set[str] | None:
        # The purchase comes on its own topic: the job finds the lapse once it has arrived.
        response = await client.post(
            "/v1/admin/jobs/win-back", params={"as_of": as_of.isoformat()}, headers=ADMIN
        )
        assert response.status_code == 200, response.text
        log = await client.get(f"/v1/customers/{customer_id}/notifications", headers=READER)
        items: list[dict[str, Any]] = log.json()["items"]
        sent = {
            i["channel"] for i in items if i["template"] == "win_back" and i["status"] == "sent"
        }
        return sent if sent == {"sms", "webhook"} else None

    await eventually(won_back, within=60, what="the win-back by SMS and webhook")
    texts = [m["text"] for m in sms_to(stack, phone)]
    assert texts.count("Fedelta: Ci manchi") == 1
    calls = [c for c in receiver.accepted(path) if c["payload"]["type"] == "win_back"]
    assert len(calls) == 1 and calls[0]["payload"]["customer_id"] == customer_id
