"""Issue 19, slow and greedy clients, on a real uvicorn server on the loopback: a request
head beyond the bounds is a 431 before any route (so before authentication) runs, and a
connection that sends its head or body too slowly, or nothing at all, is closed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from shared.runtime.http_limits import MAX_HEAD_BYTES, MAX_HEADERS, BoundedHttpToolsProtocol
from tests.support.polling import eventually

# Deadlines short enough for a test, far apart enough to tell which one closed a connection.
HEAD_TIMEOUT = 0.6
BODY_TIMEOUT = 1.2
WITHIN = 5.0  # every wait below ends by then, or the test fails


class QuickProtocol(BoundedHttpToolsProtocol):
    head_timeout = HEAD_TIMEOUT
    body_timeout = BODY_TIMEOUT
    watch_seconds = 0.1


class App:
    """Answers 200 with the body's length; counts the requests that reached it."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        self.calls += 1
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        body = str(size).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def server() -> AsyncIterator[tuple[App, int]]:
    app = App()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        http=QuickProtocol,
        loop="asyncio",
        lifespan="off",
        log_level="critical",
        timeout_keep_alive=30,  # longer than the deadlines: they, not it, must close
    )
    running = uvicorn.Server(config)
    task = asyncio.create_task(running.serve())

    async def started() -> bool | None:
        return True if running.started else None

    await eventually(started, within=WITHIN, interval=0.01, what="the server to listen")
    port: int = running.servers[0].sockets[0].getsockname()[1]
    yield app, port
    running.should_exit = True
    await asyncio.wait_for(task, WITHIN)


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def answer(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes, or until WITHIN (then the test fails).
    A close that leaves bytes of ours unread is a reset on the wire: a close too, keeping what
    arrived before it."""
    received = b""
    async with asyncio.timeout(WITHIN):
        try:
            while chunk := await reader.read(65536):
                received += chunk
        except ConnectionResetError:
            pass
    return received


async def response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    async with asyncio.timeout(WITHIN):
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        return head, await reader.readexactly(length)


def request(body: bytes = b"", headers: bytes = b"") -> bytes:
    return b"POST /v1/purchases HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n%s\r\n%s" % (
        len(body),
        headers,
        body,
    )


async def test_requests_within_the_bounds_are_served_on_a_kept_connection(
    server: tuple[App, int],
) -> None:
    app, port = server
    reader, writer = await connect(port)
    big_but_fine = b"x-pad: " + b"a" * (MAX_HEAD_BYTES // 2) + b"\r\n"
    for body, headers in [(b"{}", b""), (b"x" * 5000, big_but_fine)]:
        writer.write(request(body, headers))
        head, answered = await response(reader)
        assert head.startswith(b"HTTP/1.1 200")
        assert answered == str(len(body)).encode()
    writer.close()
    assert app.calls == 2


@pytest.mark.parametrize(
    "headers",
    [
        b"x-pad: " + b"a" * (4 * 1024 * 1024) + b"\r\n",  # 4 MB in one header
        b"".join(b"x-h%d: %s\r\n" % (i, b"b" * 200) for i in range(200)),  # many big ones
        b"".join(b"x-%d: 1\r\n" % i for i in range(MAX_HEADERS + 1)),  # too many small ones
    ],
)
async def test_a_head_beyond_the_bounds_is_a_431_before_any_route(
    server: tuple[App, int], headers: bytes
) -> None:
    app, port = server
    reader, writer = await connect(port)
    writer.write(request(b"{}", headers))
    with contextlib.suppress(ConnectionError):  # the server may close before reading it all
        await writer.drain()
    try:
        answered = await answer(reader)
    except ConnectionResetError:
        answered = b""
    if not answered:
        # Closed with the rest of 4 MB unread: the kernel resets the connection, and the
        # client may lose the 431 written before (a reset, or an end of stream on some
        # kernels). Closed, and no route ran, all the same.
        assert len(headers) > 1024 * 1024
    else:
        assert answered.startswith(b"HTTP/1.1 431"), answered[:100]
        assert b"headers-too-large" in answered
    assert app.calls == 0
    writer.close()


async def test_a_long_url_counts_towards_the_head(server: tuple[App, int]) -> None:
    app, port = server
    reader, writer = await connect(port)
    writer.write(b"GET /" + b"a" * (MAX_HEAD_BYTES + 1) + b" HTTP/1.1\r\nhost: t\r\n\r\n")
    assert (await answer(reader)).startswith(b"HTTP/1.1 431")
    assert app.calls == 0


async def test_a_connection_that_sends_nothing_is_closed_after_the_head_deadline(
    server: tuple[App, int],
) -> None:
    _, port = server
    reader, writer = await connect(port)
    started = asyncio.get_running_loop().time()
    assert await answer(reader) == b""
    assert asyncio.get_running_loop().time() - started >= HEAD_TIMEOUT * 0.9
    writer.close()


async def _trickle(
    writer: asyncio.StreamWriter, data: bytes, reader: asyncio.StreamReader
) -> bytes:
    """Sends `data` a byte at a time, a tenth of the head deadline apart, until the server
    closes; what it sent back."""
    for byte in data:
        if reader.at_eof():
            break
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            break
        await asyncio.sleep(HEAD_TIMEOUT / 10)
    return await answer(reader)


async def test_a_head_trickled_a_byte_at_a_time_is_cut_off(server: tuple[App, int]) -> None:
    app, port = server
    reader, writer = await connect(port)
    head = request(b"{}", b"".join(b"x-%d: 1\r\n" % i for i in range(20)))
    sent = _trickle(writer, head, reader)
    assert await asyncio.wait_for(sent, WITHIN) == b""
    assert app.calls == 0
    writer.close()


async def test_a_body_trickled_a_byte_at_a_time_is_cut_off(server: tuple[App, int]) -> None:
    app, port = server
    reader, writer = await connect(port)
    body = b"x" * 200
    writer.write(request(body)[: -len(body)])  # the head at once, then the body slowly
    assert await asyncio.wait_for(_trickle(writer, body, reader), WITHIN) == b""
    assert app.calls == 1  # the route ran, and saw the client gone
    writer.close()


async def test_blank_lines_between_requests_do_not_hold_the_connection(
    server: tuple[App, int],
) -> None:
    _, port = server
    reader, writer = await connect(port)
    writer.write(request(b"{}"))
    head, _ = await response(reader)
    assert head.startswith(b"HTTP/1.1 200")
    assert await asyncio.wait_for(_trickle(writer, b"\r\n" * 100, reader), WITHIN) == b""
    writer.close()
