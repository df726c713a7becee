"""Tracing a consumer's batch: a span per event, children of the events' traceparents, and the
lineage that lets the outbox stamp what the batch produces with its cause's trace."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field

from opentelemetry.trace import Span as OtelSpan
from opentelemetry.trace import SpanKind, Status, StatusCode

from shared.messaging.events import DERIVED_FROM, CloudEvent
from shared.observability.tracing import (
    SERVICE_ATTRIBUTE,
    parse_traceparent,
    span_traceparent,
    tracer,
)


@dataclass
class Lineage:
    """The trace context of a batch's events, for the events the batch produces."""

    by_event: dict[str, str] = field(default_factory=dict)
    by_subject: dict[str, str] = field(default_factory=dict)
    derived_from: dict[str, str] = field(default_factory=dict)

    def traceparent_for(self, event: CloudEvent) -> str | None:
        cause = event.id
        for _ in range(8):  # a chain of derivations within one batch is short
            found = self.by_event.get(cause)
            if found is not None:
                return found
            earlier = self.derived_from.get(cause)
            if earlier is None:
                break
            cause = earlier
        return self.by_subject.get(event.subject)


_LINEAGE: ContextVar[Lineage | None] = ContextVar("fedelta_lineage", default=None)


@contextlib.contextmanager
def applying(service: str, topic_of: dict[str, str], batch: Sequence[CloudEvent]) -> Iterator[None]:
    """Around a batch handler: a span per event (when recording), children of the events'
    traceparents, and the lineage that lets the outbox stamp what the batch produces."""
    lineage = Lineage()
    recorder = tracer()
    spans: list[OtelSpan] = []
    started = time.time_ns()
    for event in batch:
        parent = parse_traceparent(event.traceparent)
        if recorder is not None:
            span = recorder.start_span(
                f"{service} apply {event.type}",
                context=None if parent is None else parent.context(),
                kind=SpanKind.CONSUMER,
                start_time=started,
                attributes={
                    SERVICE_ATTRIBUTE: service,
                    "messaging.system": "kafka",
                    "messaging.destination.name": topic_of.get(event.id, ""),
                    "cloudevents.event_id": event.id,
                    "cloudevents.event_type": event.type,
                },
            )
            spans.append(span)
            current: str | None = span_traceparent(span)
        else:
            current = None if parent is None else parent.header()
        if current is not None:
            lineage.by_event[event.id] = current
            lineage.by_subject[event.subject] = current
    lineage_token = _LINEAGE.set(lineage)
    derived_token = DERIVED_FROM.set(lineage.derived_from)
    try:
        yield
    except BaseException as error:
        for span in spans:
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        raise
    finally:
        DERIVED_FROM.reset(derived_token)
        _LINEAGE.reset(lineage_token)
        ended = time.time_ns()
        for span in spans:
            span.end(end_time=ended)


def stamp(event: CloudEvent) -> CloudEvent:
    """`event` with its cause's traceparent when it has none and a batch is being applied."""
    if event.traceparent is not None:
        return event
    lineage = _LINEAGE.get()
    if lineage is None:
        return event
    traceparent = lineage.traceparent_for(event)
    if traceparent is None:
        return event
    return event.model_copy(update={"traceparent": traceparent})
