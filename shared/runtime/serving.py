"""How a service's HTTP server is run: uvicorn, bounded (shared.runtime.http_limits), without
a `Server` header, on its port and, when it has one, its internal port too.

Both ports are bound before any worker starts, and every worker serves both sockets with one
app, which tells them apart by the connection's port (shared.web.internal_port): so /metrics,
the docs and /openapi.json behave alike with one worker or several. With several workers a
scrape reaches one of them, as on the public port before (each worker has its own metrics).
"""

from __future__ import annotations

import logging
import socket
import sys

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from shared.runtime.http_limits import BoundedHttpToolsProtocol
from shared.settings import ServiceSettings

# uvicorn's own logger: these lines go where its "started" lines go.
log = logging.getLogger("uvicorn.error")


def server_config(target: FastAPI | str, settings: ServiceSettings) -> uvicorn.Config:
    """`target` is the app, or "module:function" (an app factory) for several workers."""
    return uvicorn.Config(
        target,
        factory=isinstance(target, str),
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        loop="uvloop",
        # httptools, with bounds on the request head and deadlines for head and body.
        http=BoundedHttpToolsProtocol,
        # No `server: uvicorn`: nothing tells a caller what answers, or which version.
        server_header=False,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket's address, bound as uvicorn binds its own (inherited by workers)."""
    sock = socket.socket(family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def listeners(settings: ServiceSettings) -> list[socket.socket]:
    """The public port's socket, then the internal port's when there is one."""
    ports = [settings.port]
    if settings.internal_port is not None:
        ports.append(settings.internal_port)
    sockets: list[socket.socket] = []
    try:
        for port in ports:
            sockets.append(bind(settings.host, port))
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def serve(target: FastAPI | str, settings: ServiceSettings) -> None:
    config = server_config(target, settings)
    try:
        sockets = listeners(settings)
    except OSError as error:
        log.error("cannot listen on %s: %s", settings.host, error)
        sys.exit(STARTUP_FAILURE)
    for sock in sockets:
        host, port = sock.getsockname()[:2]
        log.info("listening on %s:%d", host, port)
    server = uvicorn.Server(config)
    try:
        if config.workers > 1:
            Multiprocess(config, sockets=sockets).run()
        else:
            server.run(sockets=sockets)
    except KeyboardInterrupt:
        pass
    finally:
        for sock in sockets:
            sock.close()
    if config.workers == 1 and not server.started:
        sys.exit(STARTUP_FAILURE)
