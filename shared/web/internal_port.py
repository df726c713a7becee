"""/metrics, the API docs and /openapi.json on an internal port (issue 19).

With `FEDELTA_<NAME>_INTERNAL_PORT` set, the server listens on both ports
(shared.runtime.serving) and every worker serves both with one app; this tells them apart by
the port the connection came in on (the ASGI scope's `server`, the listening socket's
address, which no header can change). On the public port the internal paths answer 404, as
a path that does not exist does; the internal port answers only them and the probes (which
the orchestrator may call on either). Unset: no such middleware, everything on one port.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.web.problems import problem_response

INTERNAL_PATHS = frozenset({"/metrics", "/openapi.json", "/docs"})
INTERNAL_PREFIXES = ("/docs/",)
PROBE_PATHS = frozenset({"/healthz", "/readyz"})


def is_internal(path: str) -> bool:
    return path in INTERNAL_PATHS or path.startswith(INTERNAL_PREFIXES)


def served_on(path: str, *, internal_port: bool) -> bool:
    """Whether a port (the internal one or the public one) answers this path."""
    if internal_port:
        return is_internal(path) or path in PROBE_PATHS
    return not is_internal(path)


class InternalPort:
    """Plain ASGI, outermost; `port` is the internal one."""

    def __init__(self, app: ASGIApp, port: int) -> None:
        self.app = app
        self.port = port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            server = scope.get("server")
            internal = server is not None and server[1] == self.port
            if not served_on(scope["path"], internal_port=internal):
                # The same answer as for a path no route has: nothing tells it exists.
                answer = problem_response(404, "Not found", "Not Found", slug="not-found")
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)
