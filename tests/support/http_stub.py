"""A stand-in HTTP server on a real local port, told by the test how to behave: answer with a
given status, content type, body and headers; hang without answering; or drop the connection
once the request is read. It records what it received. For the code that calls another
service over HTTP (ingest's points gateway), so that refused, hanging and broken servers are
real sockets, not mocks. `closed_port()` is a port nothing listens on."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["answer", "hang", "drop"]


@dataclass(frozen=True)
class Received:
    method: str
    target: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class HttpStub:
    mode: Mode = "answer"
    status: int = 200
    content_type: str = "application/json"
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _handlers: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.mode, self.status, self.body = "answer", status, body
        self.content_type, self.headers = content_type, dict(headers or {})

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.received.append(Received(method, target, headers, body))
        if self.mode == "hang":
            await asyncio.Event().wait()  # until the server is closed
        if self.mode == "drop":
            return False
        extra = "".join(f"{name}: {value}\r\n" for name, value in self.headers.items())
        writer.write(
            (
                f"HTTP/1.1 {self.status} Stub\r\n"
                f"Content-Type: {self.content_type}\r\n"
                f"Content-Length: {len(self.body)}\r\n{extra}\r\n"
            ).encode("latin-1")
            + self.body
        )
        await writer.drain()
        return True


@asynccontextmanager
async def http_stub() -> AsyncIterator[HttpStub]:
    stub = HttpStub()
    server = await asyncio.start_server(stub._serve, "127.0.0.1", 0)
    stub.port = server.sockets[0].getsockname()[1]
    try:
        yield stub
    finally:
        server.close()
        handlers = list(stub._handlers)
        for handler in handlers:  # a hanging one waits forever otherwise
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


def closed_port() -> int:
    """A port that was free a moment ago and that nothing listens on: a connection to it is
    refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
