"""W3C trace context from the POS call to every consumer (OpenTelemetry), so that one purchase
can be followed across the services.

The trace travels in the events themselves: the CloudEvents distributed-tracing extension
attribute `traceparent` of the envelope. Three places keep it going, none in a service's code:

- an HTTP call (`shared.web.http.RequestTimer`) continues the caller's `traceparent` header or
  starts a trace, and makes it current: `new_event` stamps the events created meanwhile;
- the consumer (`applying`) starts a span per applied event, a child of the event's
  `traceparent`, and notes which event each new event was derived from
  (`shared.messaging.events.derived_event_id`);
- the outbox (`Outbox.add_all`) stamps an event a handler produced without a `traceparent`
  with its cause's: the event it was derived from, or else the batch's last event about the
  same customer.

Spans are recorded only when an exporter is configured (`FEDELTA_OTEL_EXPORTER=console`,
`file:<path>` or `otlp` with the OTLP exporter package installed, the standard
`OTEL_EXPORTER_OTLP_*` variables then apply). Without one, nothing is recorded and the ids
are still passed on, so that a service that does export links to the others.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace import Span as OtelSpan

from shared.observability.context import CURRENT_TRACEPARENT

EXPORTER_VARIABLE = "FEDELTA_OTEL_EXPORTER"
SERVICE_ATTRIBUTE = "fedelta.service"

# version 00: trace id, parent id, flags; lower-case hex, neither id all zeros.
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_random = random.SystemRandom()


@dataclass(frozen=True)
class TraceParent:
    trace_id: int
    span_id: int
    flags: int

    def header(self) -> str:
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{self.flags:02x}"

    def context(self) -> Any:
        """An OpenTelemetry context whose current span is this (remote) one."""
        parent = SpanContext(
            self.trace_id, self.span_id, is_remote=True, trace_flags=trace.TraceFlags(self.flags)
        )
        return trace.set_span_in_context(NonRecordingSpan(parent))


def parse_traceparent(value: str | bytes | None) -> TraceParent | None:
    """A valid W3C traceparent (version 00), or None: an outside value that is not one is
    ignored, not trusted."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    trace_id, span_id, flags = (int(group, 16) for group in match.groups())
    if trace_id == 0 or span_id == 0:
        return None
    return TraceParent(trace_id, span_id, flags)


def span_traceparent(span: OtelSpan) -> str:
    context = span.get_span_context()
    return TraceParent(context.trace_id, context.span_id, int(context.trace_flags)).header()


# -- the provider -----------------------------------------------------------------------------


@dataclass
class _State:
    provider: TracerProvider | None = None
    owned: bool = False  # created by configure_tracing (and shut down by it)

    def tracer(self) -> trace.Tracer | None:
        return None if self.provider is None else self.provider.get_tracer("fedelta")


_state = _State()


def use_provider(provider: TracerProvider | None) -> None:
    """Records spans with `provider` (a test's, with an in-memory exporter), or stops
    recording (None)."""
    _state.provider, _state.owned = provider, False


def tracer() -> trace.Tracer | None:
    """The tracer spans are recorded with, or None when tracing is off."""
    return _state.tracer()


def recording() -> bool:
    return _state.provider is not None


def configure_tracing(service: str, exporter: str | None = None) -> None:
    """Sets up the exporter named by `exporter` or `FEDELTA_OTEL_EXPORTER`; when neither names
    one, leaves things as they are (nothing recorded, or a provider a test installed)."""
    name = exporter if exporter is not None else os.environ.get(EXPORTER_VARIABLE, "")
    name = name.strip()
    if not name or name == "none":
        return
    provider = TracerProvider(resource=Resource.create({"service.name": f"fedelta-{service}"}))
    provider.add_span_processor(_processor(name))
    _state.provider, _state.owned = provider, True


def shutdown_tracing() -> None:
    """Flushes and stops the exporter configure_tracing set up (not a test's)."""
    if _state.provider is not None and _state.owned:
        _state.provider.shutdown()
        _state.provider, _state.owned = None, False


def _processor(name: str) -> SpanProcessor:
    exporter: SpanExporter
    if name == "console":
        exporter = ConsoleSpanExporter(formatter=_one_line)
    elif name.startswith("file:"):
        exporter = ConsoleSpanExporter(out=_append(name.removeprefix("file:")), formatter=_one_line)
    elif name == "otlp":
        try:
            module = importlib.import_module(
                "opentelemetry.exporter.otlp.proto.http.trace_exporter"
            )
        except ImportError:
            raise RuntimeError(
                f"{EXPORTER_VARIABLE}=otlp needs the opentelemetry-exporter-otlp-proto-http package"
            ) from None
        exporter = module.OTLPSpanExporter()
    else:
        raise ValueError(f"{EXPORTER_VARIABLE} must be none, console, otlp or file:<path>")
    return BatchSpanProcessor(exporter)


def _append(path: str) -> IO[str]:
    return open(path, "a", encoding="utf-8", buffering=1)  # kept open by the exporter


def _one_line(span: Any) -> str:
    return str(span.to_json(indent=None)) + "\n"


# -- an HTTP call -----------------------------------------------------------------------------


@contextlib.contextmanager
def serving(
    service: str, method: str, incoming: bytes | None, *, record: bool = True
) -> Iterator[HttpSpan]:
    """The trace context of one HTTP call: the caller's `traceparent`, continued, or a new
    trace; current (for `new_event`) until the call is answered. `record=False` (probes and
    scrapes) records no span."""
    parent = parse_traceparent(incoming)
    tracer = _state.tracer() if record else None
    span: OtelSpan | None = None
    if tracer is not None:
        span = tracer.start_span(
            f"{method}",
            context=None if parent is None else parent.context(),
            kind=SpanKind.SERVER,
            attributes={SERVICE_ATTRIBUTE: service, "http.request.method": method},
        )
        current = span_traceparent(span)
    elif parent is not None:
        current = parent.header()
    else:  # a trace of our own, so that the events of this call can be told apart downstream
        current = TraceParent(
            _random.getrandbits(128) or 1, _random.getrandbits(64) or 1, 1
        ).header()
    token = CURRENT_TRACEPARENT.set(current)
    noted = HttpSpan(span)
    try:
        yield noted
    finally:
        CURRENT_TRACEPARENT.reset(token)
        if span is not None:
            span.update_name(f"{method} {noted.route}")
            span.set_attribute("http.route", noted.route)
            span.set_attribute("http.response.status_code", noted.status)
            if noted.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()


@dataclass
class HttpSpan:
    span: OtelSpan | None
    route: str = "unmatched"
    status: int = 500
