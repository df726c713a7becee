"""Security headers on every answer of every service (issue 19).

Every answer says its content type is the one to use (`nosniff`), may not be framed
(`frame-ancestors 'none'`, and `X-Frame-Options` for older browsers), sends no referrer, loads
nothing (`default-src 'none'`: an API answer is data, never a page with scripts) and is not
cached (`no-store`: API answers carry member data, and no shared cache may keep them). An
answer that sets one of these itself keeps its own: the API docs page (shared.web.docs) allows
its own script and style, its assets may be revalidated from cache.

uvicorn's `Server` header is off (shared.runtime.serving). Plain ASGI, outermost (around
Starlette's error middleware, so that a 500 gets the headers too): it appends prepared tuples
when the answer starts; no task group or stream per request as BaseHTTPMiddleware would have
(ingest's purchases take thousands of calls a second).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = "default-src 'none'; frame-ancestors 'none'"

HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", API_CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)


_OURS = frozenset(name for name, _ in HEADERS)


def with_security_headers(
    headers: Iterable[tuple[bytes, bytes]],
) -> list[tuple[bytes, bytes]]:
    """The answer's headers and each of ours it does not set itself (a new list: the
    response's own may be shared)."""
    given = list(headers)
    present = {name.lower() for name, _ in given} & _OURS
    if not present:  # nearly every answer: all of ours, nothing to compare
        given.extend(HEADERS)
        return given
    given.extend(header for header in HEADERS if header[0] not in present)
    return given


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = with_security_headers(message.get("headers", ()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
