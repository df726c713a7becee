"""What stands around a service's whole app: the security headers and, when the service has
an internal port, the gate that keeps /metrics and the docs off the public one."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp

from shared.web.internal_port import InternalPort
from shared.web.security_headers import SecurityHeaders


class ServiceApp(FastAPI):
    """FastAPI, with both outermost: around Starlette's error middleware too, so that a 500
    it answers, and a 404 of the gate, carry the headers. `internal_port` is read when the
    stack is built (at the first request)."""

    internal_port: int | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack: ASGIApp = super().build_middleware_stack()
        if self.internal_port is not None:
            stack = InternalPort(stack, self.internal_port)
        return SecurityHeaders(stack)
