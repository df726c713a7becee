"""Trace context as a plain context variable, so the event contract imports no tracing library:
the traceparent of the HTTP call or event under way, which new events and log lines carry."""

from __future__ import annotations

from contextvars import ContextVar

CURRENT_TRACEPARENT: ContextVar[str | None] = ContextVar("fedelta_traceparent", default=None)
