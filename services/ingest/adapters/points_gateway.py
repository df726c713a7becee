"""Points' internal HTTP API, called on a partner's behalf with the till token (the
`PointsGateway` port).

One httpx client per process, made on first use on the running loop and closed with the app
(`api/app.py`): at most `connections` calls in flight, the rest waiting for a free connection
as long as the connect timeout. A failure is told by its kind only — `PointsUnreachable` when
nothing was sent (the connection was never made), `PointsOutcomeUnknown` when the call went
and no complete answer came back — and never retried here: a till retries with its
Idempotency-Key, which points honours. Nothing of a call (its URL holds a coupon code) is
logged: httpx's own request log is silenced in `bootstrap.py`.
"""

from __future__ import annotations

import asyncio
import json

import httpx

from services.ingest.domain.till import MAX_ANSWER_BYTES, PointsAnswer
from services.ingest.ports import PointsOutcomeUnknown, PointsUnreachable, TillCall

PARTNER_HEADER = "Fedelta-Partner-Id"
STORE_HEADER = "Fedelta-Store-Id"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Below uvicorn's keep-alive (5 s): a connection points is about to close is not reused, so a
# call is never sent on a connection closing under it (which would make its outcome unknown).
KEEPALIVE_EXPIRY_SECONDS = 4.0

# Nothing left ingest: the connection was never made, or no connection of the pool was free.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class HttpPointsGateway:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        connect_timeout_seconds: float = 2.0,
        timeout_seconds: float = 10.0,
        connections: int = 32,
        transport: httpx.AsyncBaseTransport | None = None,  # a stand-in server in unit tests
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = httpx.Timeout(
            timeout_seconds, connect=connect_timeout_seconds, pool=connect_timeout_seconds
        )
        # httpx's read timeout is per read: the whole call is bounded too (a wait for a free
        # connection, the connection, and the answer).
        self._deadline = 2 * connect_timeout_seconds + timeout_seconds
        self._limits = httpx.Limits(
            max_connections=connections,
            max_keepalive_connections=connections,
            keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
        )
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:  # never the token
        return f"HttpPointsGateway({self._base_url!r})"

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout,
                limits=self._limits,
                follow_redirects=False,
                transport=self._transport,
                trust_env=False,  # no proxy from the environment between two services
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def call(self, call: TillCall) -> PointsAnswer:
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            PARTNER_HEADER: call.partner_id,
        }
        if call.store_id is not None:
            headers[STORE_HEADER] = call.store_id
        if call.idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = call.idempotency_key
        content: bytes | None = None
        if call.body is not None:
            content = json.dumps(dict(call.body), separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        request = self._http().build_request(
            call.method, f"{self._base_url}{call.path}", content=content, headers=headers
        )
        try:
            async with asyncio.timeout(self._deadline):
                return await self._send(request)
        except _NOT_SENT as error:
            raise PointsUnreachable(type(error).__name__) from None
        except (httpx.HTTPError, TimeoutError) as error:
            raise PointsOutcomeUnknown(type(error).__name__) from None

    async def _send(self, request: httpx.Request) -> PointsAnswer:
        response = await self._http().send(request, stream=True)
        try:
            body = await _bounded_body(response)
        finally:
            await response.aclose()
        return PointsAnswer(
            status=response.status_code,
            content_type=response.headers.get("content-type", ""),
            body=body,
            retry_after=response.headers.get("retry-after"),
            replayed=response.headers.get("idempotent-replayed"),
        )


async def _bounded_body(response: httpx.Response) -> bytes:
    """The body, or its first MAX_ANSWER_BYTES + 1 bytes when it is longer (then refused)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            break
    return b"".join(chunks)[: MAX_ANSWER_BYTES + 1]
