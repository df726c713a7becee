"""SMS through an HTTP provider and partner webhooks: the two channels that are HTTP calls.

Both say why a call failed by its kind only (an HTTP status, an exception class), never by
the answer's text, which could quote a phone number or the message."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from services.notifications.adapters.webhook_addresses import (
    Destination,
    WebhookGuard,
    WebhookRefused,
    WebhookUnresolved,
)
from shared.clock import Clock
from shared.web.auth import SIGNATURE_HEADER, sign

# The header a receiver recognises a retried call by: the notification's id, the same on
# every attempt.
DELIVERY_ID_HEADER = "Fedelta-Delivery-Id"


class HttpDeliveryError(Exception):
    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True)
class OutgoingSms:
    notification_id: str
    to: str = field(repr=False)
    text: str = field(repr=False)


class SmsSender(Protocol):
    async def send(self, sms: OutgoingSms) -> None:
        """Raises HttpDeliveryError when the provider did not accept the message."""
        ...


@dataclass(frozen=True)
class OutgoingWebhook:
    notification_id: str
    url: str
    secret: str = field(repr=False)
    payload: dict[str, Any]


class WebhookSender(Protocol):
    async def send(self, call: OutgoingWebhook) -> None:
        """Raises HttpDeliveryError when the partner did not accept the call."""
        ...


def _outcome(response: httpx.Response) -> None:
    """2xx is accepted; 408, 429 and 5xx may pass on a retry; any other answer (a 3xx, which
    is not followed, or a 4xx) would be the same again, so it is a permanent failure."""
    status = response.status_code
    if 200 <= status < 300:
        return
    retryable = status in (408, 429) or status >= 500
    raise HttpDeliveryError(f"HTTP {status}", permanent=not retryable)


class ClientPool:
    """One httpx client kept between calls (its connections reused, at most `connections`
    at a time, queueing the rest), made on first use on the running loop."""

    def __init__(
        self, connections: int, timeout_seconds: float, transport: httpx.AsyncBaseTransport | None
    ) -> None:
        self._limits = httpx.Limits(
            max_connections=connections, max_keepalive_connections=connections
        )
        self._timeout_seconds = timeout_seconds
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout_seconds,
                follow_redirects=False,
                transport=self._transport,
                limits=self._limits,
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


async def _post(pool: ClientPool, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    try:
        return await pool.client().post(url, content=body, headers=headers)
    except httpx.HTTPError as error:
        raise HttpDeliveryError(type(error).__name__) from None


# A webhook call's failure as a class only: an exception's name (a refused connection against
# a read timeout or a protocol error) would tell a caller which ports are open where.
REFUSED, TIMEOUT, UNREACHABLE = "refused", "timeout", "unreachable"


async def _post_to(
    pool: ClientPool, destination: Destination, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    try:
        return await pool.client().post(
            destination.url,
            content=body,
            headers={**headers, **destination.headers()},
            extensions=destination.extensions(),
        )
    except httpx.TimeoutException:
        raise HttpDeliveryError(TIMEOUT) from None
    except httpx.HTTPError:
        raise HttpDeliveryError(UNREACHABLE) from None


@dataclass(frozen=True)
class HttpSmsSender:
    """POSTs `{"to", "text", "reference"}` as JSON with the provider's bearer token; the
    notification id goes as the Idempotency-Key, so a provider that honours it sends a
    retried message once."""

    url: str
    token: str = field(repr=False)
    timeout_seconds: float = 10.0
    transport: httpx.AsyncBaseTransport | None = None  # a stand-in server in unit tests
    connections: int = 8  # calls at once to the provider, over connections kept open
    _pool: ClientPool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_pool", ClientPool(self.connections, self.timeout_seconds, self.transport)
        )

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def send(self, sms: OutgoingSms) -> None:
        body = json.dumps(
            {"to": sms.to, "text": sms.text, "reference": sms.notification_id}
        ).encode()
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "Idempotency-Key": sms.notification_id,
        }
        _outcome(await _post(self._pool, self.url, body, headers))


def request_target(url: str) -> bytes:
    """The path and query of a URL exactly as httpx puts them on the request line (after its
    percent-encoding): what is signed."""
    return httpx.URL(url).raw_path


@dataclass(frozen=True)
class HttpWebhookSender:
    """POSTs the payload as JSON, signed like the partner's own calls to ingest:
    `Fedelta-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.POST.<path?query>.<body>")>`.

    Each call resolves the URL's host and checks every address (`guard`,
    `domain/webhook_urls.py`), then connects to a checked one: a URL that is (or now
    resolves to) a loopback, private, link-local or other non-public address fails for good
    ("refused"); a failure is named by its class only ("refused", "timeout", "unreachable",
    or the HTTP status)."""

    clock: Clock
    timeout_seconds: float = 10.0
    transport: httpx.AsyncBaseTransport | None = None  # a stand-in server in unit tests
    connections: int = 8  # calls at once, whatever the partners, over connections kept open
    guard: WebhookGuard = field(default_factory=WebhookGuard)
    _pool: ClientPool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_pool", ClientPool(self.connections, self.timeout_seconds, self.transport)
        )

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def send(self, call: OutgoingWebhook) -> None:
        body = json.dumps(call.payload, separators=(",", ":"), sort_keys=True).encode()
        timestamp = int(self.clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(call.secret, timestamp, "POST", request_target(call.url), body),
            DELIVERY_ID_HEADER: call.notification_id,
        }
        try:
            destination = await self.guard.destination(call.url)
        except WebhookRefused:
            raise HttpDeliveryError(REFUSED, permanent=True) from None
        except WebhookUnresolved:
            raise HttpDeliveryError(UNREACHABLE) from None
        _outcome(await _post_to(self._pool, destination, body, headers))
