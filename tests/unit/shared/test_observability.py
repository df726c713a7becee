"""The metrics move when the runtime works, and the trace context goes from an HTTP call into
the events it makes, and from an applied event into the events derived from it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from shared.clock import FixedClock
from shared.messaging import events
from shared.messaging import tracing as event_tracing
from shared.messaging.consumer import BatchHandler
from shared.messaging.events import CloudEvent, derived_event_id, new_event
from shared.messaging.kafka import EVENT_TYPE_HEADER
from shared.messaging.relay import OutboxRelay
from shared.observability import tracing
from shared.observability.context import CURRENT_TRACEPARENT
from shared.runtime.jobs import run_exclusively
from shared.storage.db import define_outbox
from shared.web.http import RequestTimer
from tests.support.factories import enrolment
from tests.support.fakes.messaging import (
    NOW,
    TOPIC,
    FakeInboxConsumer,
    FakeKafkaConsumer,
    Message,
    Partition,
    fake_consumer,
)
from tests.support.fakes.runtime import FakeLock, RecordingJob

POS_TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def message(offset: int, event: CloudEvent | None, event_type: str | None = None) -> Message:
    headers = [] if event_type is None else [(EVENT_TYPE_HEADER, event_type.encode())]
    value = None if event is None else event.to_bytes()
    return Message(TOPIC, 0, offset, b"k", value, headers)


def consumer_with(handler: BatchHandler, service: str) -> FakeInboxConsumer:
    return fake_consumer(handler, service=service, max_attempts=1, retry_backoff=0.0)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    try:
        yield exporter
    finally:
        tracing.use_provider(None)


# -- metrics ----------------------------------------------------------------------------------


async def test_a_batch_counts_each_outcome_by_type_once() -> None:
    service = f"metrics-{uuid.uuid4().hex[:8]}"

    async def refuse_bad(conn: Any, batch: Sequence[CloudEvent]) -> None:
        if any(event.subject == "bad" for event in batch):
            raise ValueError("refused")

    applied, poison = enrolment("a", at=NOW), enrolment("bad", at=NOW)
    worker = consumer_with(refuse_bad, service)
    await worker.process_batch(
        [
            message(0, applied),
            message(1, applied),  # the same event twice in one poll
            message(2, enrolment("c", at=NOW), events.POINTS_EARNED),  # a type it does not use
            message(3, None),  # a tombstone
            message(4, poison, events.CUSTOMER_ENROLLED),
        ]
    )
    await worker.process_batch([message(5, applied)])  # redelivered: the inbox has it

    def consumed(event_type: str, outcome: str) -> float:
        return sample(
            "fedelta_events_consumed_total",
            consumer=service,
            topic=TOPIC,
            type=event_type,
            outcome=outcome,
        )

    assert consumed(events.CUSTOMER_ENROLLED, "applied") == 1
    assert consumed(events.CUSTOMER_ENROLLED, "duplicate") == 2
    assert consumed(events.POINTS_EARNED, "skipped") == 1
    assert consumed("tombstone", "skipped") == 1
    assert consumed(events.CUSTOMER_ENROLLED, "dead_lettered") == 1
    assert (
        sample("fedelta_dead_letters_total", consumer=service, topic=TOPIC, error="ValueError") == 1
    )
    assert sample("fedelta_consumer_handler_seconds_count", consumer=service) >= 1


async def ignore(conn: Any, batch: Sequence[CloudEvent]) -> None:
    return None


async def test_an_unknown_announced_type_makes_no_new_series() -> None:
    service = f"metrics-{uuid.uuid4().hex[:8]}"
    worker = consumer_with(ignore, service)
    await worker.process_batch([message(0, enrolment("x", at=NOW), "fedelta.made.up.v9")])
    assert (
        sample(
            "fedelta_events_consumed_total",
            consumer=service,
            topic=TOPIC,
            type="unknown",
            outcome="skipped",
        )
        == 1
    )


async def test_the_lag_is_the_highwater_less_the_next_offset_per_partition() -> None:
    service = f"lag-{uuid.uuid4().hex[:8]}"
    worker = consumer_with(ignore, service)
    p0, p1 = Partition(TOPIC, 0), Partition(TOPIC, 1)
    kafka = FakeKafkaConsumer(highwaters={p0: 120, p1: 7}, positions={p0: 20, p1: 7})

    worker._note_lag(kafka, {p0: [Message(TOPIC, 0, 19, None, b"")]})
    assert sample("fedelta_consumer_lag", consumer=service, topic=TOPIC, partition="0") == 100

    await worker._refresh_idle_lag(kafka)
    assert sample("fedelta_consumer_lag", consumer=service, topic=TOPIC, partition="0") == 100
    assert sample("fedelta_consumer_lag", consumer=service, topic=TOPIC, partition="1") == 0

    worker.forget_lag([p0])
    assert (
        REGISTRY.get_sample_value(
            "fedelta_consumer_lag", {"consumer": service, "topic": TOPIC, "partition": "0"}
        )
        is None
    )


async def test_job_runs_are_counted_timed_and_stamped() -> None:
    name = f"job-{uuid.uuid4().hex[:8]}"
    await run_exclusively(RecordingJob(name), None, NOW, FakeLock())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        await run_exclusively(RecordingJob(name, fails=True), None, NOW, FakeLock())  # type: ignore[arg-type]

    assert sample("fedelta_job_runs_total", job_name=name, outcome="done") == 1
    assert sample("fedelta_job_runs_total", job_name=name, outcome="failed") == 1
    assert sample("fedelta_job_seconds_count", job_name=name) == 2
    assert sample("fedelta_job_last_success_timestamp_seconds", job_name=name) > 0


@dataclass
class OldestRow:
    id: int
    created_at: datetime
    newest: int


class OneRow:
    def __init__(self, row: OldestRow) -> None:
        self.row = row

    def first(self) -> OldestRow:
        return self.row


class BacklogConnection:
    def __init__(self, row: OldestRow) -> None:
        self.row = row

    async def execute(self, statement: Any, parameters: dict[str, Any]) -> OneRow:
        assert parameters == {"after": 40}  # the rows the cycle published
        return OneRow(self.row)


async def test_the_relay_reports_its_backlog_and_the_age_of_its_oldest_row() -> None:
    # An outbox of its own name: the gauges are labelled by table.
    table = define_outbox(sa.MetaData()).to_metadata(
        sa.MetaData(), name=f"outbox_{uuid.uuid4().hex[:8]}"
    )
    relay = OutboxRelay(None, table, None, clock=FixedClock(NOW))  # type: ignore[arg-type]
    oldest = OldestRow(id=41, created_at=NOW - timedelta(seconds=90), newest=140)

    await relay._measure_backlog(BacklogConnection(oldest), after=40)  # type: ignore[arg-type]
    assert sample("fedelta_outbox_backlog", table=table.name) == 100
    assert sample("fedelta_outbox_oldest_age_seconds", table=table.name) == 90

    await relay._measure_backlog(None)  # the cycle found the outbox empty
    assert sample("fedelta_outbox_backlog", table=table.name) == 0
    assert sample("fedelta_outbox_oldest_age_seconds", table=table.name) == 0


# -- trace context ----------------------------------------------------------------------------


def test_a_traceparent_is_parsed_strictly() -> None:
    parsed = tracing.parse_traceparent(POS_TRACE)
    assert parsed is not None and parsed.header() == POS_TRACE
    for bad in (
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # a zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "a" * 1000,
        "",
    ):
        assert tracing.parse_traceparent(bad) is None, bad


def http_app() -> tuple[FastAPI, list[CloudEvent]]:
    made: list[CloudEvent] = []
    app = FastAPI()

    @app.post("/v1/customers/{customer_id}", status_code=202)
    async def enrol(customer_id: str) -> dict[str, str]:
        made.append(enrolment(customer_id, at=NOW))
        return {}

    app.add_middleware(RequestTimer, service="ingest")
    return app, made


async def post(app: FastAPI, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        assert (await client.post("/v1/customers/c1", headers=headers)).status_code == 202


async def test_an_http_call_continues_the_callers_trace_in_the_events_it_makes(
    spans: InMemorySpanExporter,
) -> None:
    app, made = http_app()
    await post(app, {"traceparent": POS_TRACE})

    [event] = made
    carried = tracing.parse_traceparent(event.traceparent)
    assert carried is not None
    [server] = spans.get_finished_spans()
    assert server.name == "POST /v1/customers/{customer_id}"
    assert server.context is not None and server.parent is not None
    assert carried.trace_id == server.context.trace_id == int(POS_TRACE[3:35], 16)
    assert carried.span_id == server.context.span_id
    assert server.parent.span_id == int(POS_TRACE[36:52], 16)
    assert CURRENT_TRACEPARENT.get() is None  # not left behind


async def test_without_an_exporter_a_call_still_starts_or_continues_a_trace() -> None:
    app, made = http_app()
    await post(app, {"traceparent": POS_TRACE})
    await post(app, {"traceparent": "not a traceparent"})
    await post(app, {})

    continued, started, also_started = (event.traceparent for event in made)
    assert continued == POS_TRACE
    assert tracing.parse_traceparent(started) is not None
    assert tracing.parse_traceparent(also_started) is not None
    assert started != also_started


def apply_and_derive(batch: Sequence[CloudEvent], derive: Any) -> list[CloudEvent]:
    stamped: list[CloudEvent] = []
    with event_tracing.applying("points", {e.id: TOPIC for e in batch}, batch):
        for made in derive(batch):
            stamped.append(event_tracing.stamp(made))
    return stamped


def earned(cause: CloudEvent, customer_id: str, *, derived: bool = True) -> CloudEvent:
    return new_event(
        events.PointsAdjusted(customer_id=customer_id, points=5, reason="r", actor="a"),
        source="points",
        subject=customer_id,
        time=NOW,
        event_id=derived_event_id(cause.id, "earned") if derived else None,
    )


async def test_an_applied_event_gets_a_child_span_and_its_derived_events_carry_it(
    spans: InMemorySpanExporter,
) -> None:
    first = enrolment("same-customer", at=NOW, traceparent=POS_TRACE)
    other_trace = "00-11111111111111111111111111111111-2222222222222222-01"
    second = enrolment("same-customer", at=NOW, traceparent=other_trace)

    made = apply_and_derive([first, second], lambda batch: [earned(e, e.subject) for e in batch])

    applied: dict[str, ReadableSpan] = {
        str(span.attributes["cloudevents.event_id"]): span  # type: ignore[index]
        for span in spans.get_finished_spans()
    }
    for cause, effect in zip((first, second), made, strict=True):
        span = applied[cause.id]
        assert span.parent is not None and span.context is not None
        parent = tracing.parse_traceparent(cause.traceparent)
        assert parent is not None
        assert (span.context.trace_id, span.parent.span_id) == (parent.trace_id, parent.span_id)
        # Derived from its own cause, not the batch's last event about the customer.
        carried = tracing.parse_traceparent(effect.traceparent)
        assert carried is not None
        assert (carried.trace_id, carried.span_id) == (span.context.trace_id, span.context.span_id)


async def test_an_event_not_derived_from_an_id_follows_its_customers_last_event() -> None:
    cause = enrolment("c9", at=NOW, traceparent=POS_TRACE)
    [made, stranger] = apply_and_derive(
        [cause],
        lambda batch: [
            earned(batch[0], "c9", derived=False),
            earned(batch[0], "zz", derived=False),
        ],
    )
    assert made.traceparent == POS_TRACE  # not recording: the cause's own context, passed on
    assert stranger.traceparent is None
    assert (
        event_tracing.stamp(earned(cause, "c9")).traceparent is None
    )  # outside a batch: untouched


# -- logs -------------------------------------------------------------------------------------


def test_a_log_line_is_one_json_object_with_the_calls_trace_id_and_no_exception_message() -> None:
    import json
    import logging

    from shared.observability.logs import JsonLines

    secret = "alice@example.com"
    record = logging.LogRecord("points", logging.ERROR, __file__, 1, "failed: %s", None, None)
    try:
        raise ValueError(secret)
    except ValueError as error:
        record.args = (error,)
        record.exc_info = (ValueError, error, error.__traceback__)
    token = CURRENT_TRACEPARENT.set(POS_TRACE)
    try:
        line = JsonLines("points").format(record)
    finally:
        CURRENT_TRACEPARENT.reset(token)

    assert "\n" not in line and secret not in line
    logged = json.loads(line)
    assert logged["service"] == "points" and logged["level"] == "ERROR"
    assert logged["message"] == "failed: ValueError"
    assert logged["trace_id"] == POS_TRACE[3:35]
    assert "ValueError (message withheld" in logged["exception"]


async def test_probes_and_scrapes_record_no_span(spans: InMemorySpanExporter) -> None:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(RequestTimer, service="points")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/elsewhere")).status_code == 404
    assert [span.name for span in spans.get_finished_spans()] == ["GET unmatched"]


def test_the_file_exporter_writes_one_json_span_per_line(tmp_path: Path) -> None:
    import json

    path = tmp_path / "spans.jsonl"
    tracing.configure_tracing("points", f"file:{path}")
    try:
        with tracing.serving("points", "GET", POS_TRACE.encode()) as call:
            call.route, call.status = "/v1/things", 200
        with tracing.serving("points", "GET", None) as call:
            call.route, call.status = "/v1/other", 503
    finally:
        tracing.shutdown_tracing()
    assert not tracing.recording()

    written = [json.loads(line) for line in path.read_text().splitlines()]
    assert [span["name"] for span in written] == ["GET /v1/things", "GET /v1/other"]
    assert written[0]["context"]["trace_id"] == "0x" + POS_TRACE[3:35]
    assert written[0]["resource"]["attributes"]["service.name"] == "fedelta-points"
    assert written[1]["status"]["status_code"] == "ERROR"


def test_an_unknown_exporter_is_refused_and_none_changes_nothing() -> None:
    with pytest.raises(ValueError, match="FEDELTA_OTEL_EXPORTER"):
        tracing.configure_tracing("points", "zipkin")
    tracing.configure_tracing("points", "none")
    assert not tracing.recording()
