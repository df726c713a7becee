"""Request bodies limited in size before they are read (RFC 9110 413, as problem+json).

Plain ASGI (not BaseHTTPMiddleware, which costs more than a small request): a declared
Content-Length over the limit is answered at once without calling the app, and a body sent
without one (chunked) is counted as it streams and cut off as soon as it passes the limit,
so an unauthenticated 100 MB POST is never held in memory. A service may allow larger
bodies on named paths (ingest's member import: 500 rows a call), every other path keeping
the limit.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.web.problems import problem_response


class BodyTooLarge(HTTPException):
    """Raised from `receive` when the body passes the limit: an HTTPException, so FastAPI lets
    it through its body reading as it is, and the problem handlers answer 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"the request body is larger than {limit} bytes")


class BodyLimit:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, larger: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.larger = dict(larger or {})  # path -> its own limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.max_body_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(limit, scope, receive, send)
            return
        received = 0
        started = False

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive_within_limit, send_noting_start)
        except BodyTooLarge:
            # Read outside a route (by a middleware): nobody answered yet, so answer here.
            if started:
                raise
            await _refuse(limit, scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            if not value.isdigit():  # ASCII digits only; the server refuses such a request
                return None
            # More than 18 digits is more than any limit: no need to convert all of them.
            return int(value) if len(value) <= 18 else 2**63
    return None


async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem_response(
        413,
        "Payload too large",
        f"the request body is larger than {limit} bytes",
        slug="payload-too-large",
    )
    await response(scope, receive, send)
