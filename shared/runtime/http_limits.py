"""The HTTP server's bounds on what a client sends before any route sees it (issue 19).

uvicorn's httptools protocol reads request heads of any size and count (4 MB of headers were
read before authentication), and has no deadline for a request's head or body: a connection
made and never used stays open, and any byte received cancels the keep-alive timer, so one
byte every few seconds holds a connection indefinitely. This protocol adds:

- a bounded head: a request whose head (request line and headers) is still incomplete after
  `MAX_HEAD_BYTES` received, or that has more than `MAX_HEADERS` headers, gets a `431` and
  the connection is closed; no route, no authentication, no database ran. The bytes are
  counted per chunk received, so at most one chunk (the transport's read size) is parsed
  beyond the bound;
- deadlines: a request's head must be complete within `HEAD_TIMEOUT_SECONDS` of the
  connection, of its first byte or of the previous answer (blank lines between requests do
  not re-arm it); its body within `BODY_TIMEOUT_SECONDS` of the end of its head. Past either,
  the connection is closed (a route waiting for the body sees the client gone).

The deadlines are kept by one timer per connection, waking every `WATCH_SECONDS`, which
compares the time the current phase started with its deadline: a request pays a few
attribute writes and clock reads, not a timer of its own (the purchase path's per-request
cost is what it was: bench/ measures the edge; tests/unit/shared/test_server_limits.py the
bounds).
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

# The head of the largest legitimate call (a signed POS call with a trace context and a
# bearer token) is under 2 KiB; browsers send up to 8 KiB of cookies on a bad day.
MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
HEAD_TIMEOUT_SECONDS = 10.0
BODY_TIMEOUT_SECONDS = 30.0
WATCH_SECONDS = 1.0

# The phases a connection's current request is in.
_HEAD, _BODY, _APP = 0, 1, 2

_TOO_LARGE_BODY = (
    b'{"type":"urn:fedelta:problem:headers-too-large","title":"Request Header Fields Too '
    b'Large","status":431,"detail":"at most %d bytes of request line and headers, and %d '
    b'headers, are read"}'
) % (MAX_HEAD_BYTES, MAX_HEADERS)
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/problem+json\r\n"
    # What every answer carries (shared.web.security_headers), this one written here.
    b"x-content-type-options: nosniff\r\n"
    b"content-security-policy: default-src 'none'; frame-ancestors 'none'\r\n"
    b"cache-control: no-store\r\n"
    b"connection: close\r\n"
    b"content-length: %d\r\n\r\n%s"
) % (len(_TOO_LARGE_BODY), _TOO_LARGE_BODY)


class HeadTooLarge(Exception):
    """Raised from a parser callback: the parser stops, the connection gets a 431."""


def head_size(url: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """The bytes of a request head: its target and each header line (name, value, ": ",
    CRLF), within a few bytes of the request line's own."""
    return len(url) + sum(len(name) + len(value) + 4 for name, value in headers)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds above (passed as `http=` to uvicorn)."""

    max_head_bytes = MAX_HEAD_BYTES
    max_headers = MAX_HEADERS
    head_timeout = HEAD_TIMEOUT_SECONDS
    body_timeout = BODY_TIMEOUT_SECONDS
    watch_seconds = WATCH_SECONDS

    _watch: asyncio.TimerHandle | None = None
    _phase = _HEAD
    _since = 0.0
    _head_bytes = 0
    _chunk = 0
    _too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._phase, self._since = _HEAD, self.loop.time()
        self._watch = self.loop.call_later(self.watch_seconds, self._check)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._chunk = len(data)
        super().data_received(data)
        # Still in a head after this chunk: all of it was head (a body starts only after).
        if self._phase == _HEAD and self.parser is not None:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
                self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase, self._since, self._head_bytes = _HEAD, self.loop.time(), 0

    def on_headers_complete(self) -> None:
        # A head that ends in the chunk it started in was not counted yet: measured only
        # when that chunk could hold more than the bound (not on the purchase path's).
        if len(self.headers) > self.max_headers or (
            self._head_bytes + self._chunk > self.max_head_bytes
            and head_size(self.url, self.headers) > self.max_head_bytes
        ):
            self._too_large = True
            raise HeadTooLarge  # the parser's error: uvicorn calls send_400_response
        self._phase, self._since = _BODY, self.loop.time()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._phase = _APP
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # Between requests uvicorn's keep-alive timer runs, but any byte cancels it (blank
        # lines are skipped before a request without starting one): the head's deadline runs
        # too, unless a pipelined request is already waiting.
        idle = not self.pipeline
        super().on_response_complete()
        if idle:
            self._phase, self._since, self._head_bytes = _HEAD, self.loop.time(), 0

    def send_400_response(self, msg: str) -> None:
        """uvicorn answers a parser error so; a head beyond the bounds gets its own answer."""
        if self._too_large:
            self._refuse_head()
            return
        super().send_400_response(msg)

    def _refuse_head(self) -> None:
        self.transport.write(_TOO_LARGE)
        self.transport.close()

    def _check(self) -> None:
        self._watch = None
        if self.transport.is_closing():
            return
        limit = {_HEAD: self.head_timeout, _BODY: self.body_timeout}.get(self._phase)
        if limit is not None and self.loop.time() - self._since > limit:
            log.warning("closed a connection whose request did not arrive in time")
            self.transport.close()
            return
        self._watch = self.loop.call_later(self.watch_seconds, self._check)
