"""One purchase followed across the four services, and the metrics they serve, on the real
Kafka and PostgreSQL: the services run in-process with their real lifespans (consumers,
relays), their spans recorded by an in-memory OpenTelemetry exporter."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack

import httpx
import pytest
import pytest_asyncio
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.ingest.api.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from services.notifications.api.app import create_app as create_notifications
from services.notifications.settings import NotificationsSettings
from services.points.api.app import create_app as create_points
from services.points.settings import PointsSettings
from services.tiers.api.app import create_app as create_tiers
from services.tiers.settings import TiersSettings
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from shared.messaging.kafka import TRACEPARENT_HEADER
from shared.observability import tracing
from tests.integration.core.support import new_pos
from tests.integration.ingest.support import Pos, unique
from tests.support.kafka import read_all
from tests.support.polling import eventually
from tests.support.services import running, settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

SERVICES = ("ingest", "points", "tiers", "notifications")
# Generous: the consumers join their groups first, on a machine shared with other work.
WITHIN = 120.0


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    try:
        yield exporter
    finally:
        tracing.use_provider(None)
        provider.shutdown()


@pytest_asyncio.fixture(scope="module")
async def clients(
    stack: Stack, spans: InMemorySpanExporter
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    for name in SERVICES:
        stack.migrate(name)
    async with AsyncExitStack() as services:
        apps = [
            running(create_ingest, settings_for(IngestSettings, stack, "ingest")),
            running(create_points, settings_for(PointsSettings, stack, "points")),
            running(create_tiers, settings_for(TiersSettings, stack, "tiers")),
            running(
                create_notifications,
                settings_for(NotificationsSettings, stack, "notifications"),
            ),
        ]
        clients = {}
        for name, app in zip(SERVICES, apps, strict=True):
            _, clients[name] = await services.enter_async_context(app)
        yield clients


async def observed_pos(ingest: httpx.AsyncClient) -> Pos:
    return await new_pos(ingest, "Observability", "obs-partner")


def in_trace(spans: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [
        span
        for span in spans.get_finished_spans()
        if span.context is not None and span.context.trace_id == trace_id
    ]


def applied(found: list[ReadableSpan]) -> set[tuple[str, str]]:
    """(service, event type) of the consumer spans."""
    return {
        (str(span.attributes.get(tracing.SERVICE_ATTRIBUTE)), str(span.attributes.get(key)))
        for span in found
        if span.attributes is not None and (key := "cloudevents.event_type") in span.attributes
    }


async def test_one_purchase_is_one_trace_across_every_service(
    stack: Stack, clients: dict[str, httpx.AsyncClient], spans: InMemorySpanExporter
) -> None:
    pos = await observed_pos(clients["ingest"])
    customer_id = unique("obs-customer")
    enrolled = await pos.enrol(
        customer_id, email=f"{customer_id}@example.com", consent={"email": True}
    )
    assert enrolled.status_code == 202, enrolled.text

    trace_id = int(unique("x")[-12:], 16) << 64 | 0xF00D
    pos_span = 0x00F067AA0BA902B7
    traceparent = f"00-{trace_id:032x}-{pos_span:016x}-01"
    # Enough for silver: the purchase changes the tier, and tier.changed is consumed too.
    bought = await pos.send(
        "POST",
        "/v1/purchases",
        {
            "purchase_id": unique("obs-purchase"),
            "customer_id": customer_id,
            "occurred_at": _minutes_ago(1),
            "currency": "EUR",
            "total": "600.00",
        },
        headers={"traceparent": traceparent},
    )
    assert bought.status_code == 202, bought.text

    expected = {
        # the purchase itself, in every consumer of the purchases topic
        ("points", events.PURCHASE_COMPLETED),
        ("tiers", events.PURCHASE_COMPLETED),
        # what points derived from it, in notifications
        ("notifications", events.POINTS_EARNED),
        # what tiers derived from it, in points and notifications
        ("points", events.TIER_CHANGED),
        ("notifications", events.TIER_CHANGED),
    }

    async def whole_trace() -> list[ReadableSpan] | None:
        found = in_trace(spans, trace_id)
        return found if expected <= applied(found) else None

    found = await eventually(whole_trace, within=WITHIN, what="the purchase's trace everywhere")

    services = {str((span.attributes or {}).get(tracing.SERVICE_ATTRIBUTE)) for span in found}
    assert set(SERVICES) <= services
    [server] = [span for span in found if span.name == "POST /v1/purchases"]
    assert server.parent is not None and server.parent.span_id == pos_span
    # Each applied event's span is a child of a span of the trace (the call, or the span of
    # the event it was derived from), never a root.
    span_ids = {span.context.span_id for span in found if span.context is not None}
    for span in found:
        if span is server:
            continue
        assert span.parent is not None and span.parent.span_id in span_ids, span.name

    # On the wire: the envelope's attribute, and the same in the record's headers.
    [record] = [
        r for r in await read_all(stack.kafka, topics.PURCHASES) if r.key == customer_id.encode()
    ]
    carried = CloudEvent.from_bytes(record.value).traceparent
    assert carried == f"00-{trace_id:032x}-{server.context.span_id:016x}-01"
    assert (TRACEPARENT_HEADER, carried.encode()) in [(k, bytes(v)) for k, v in record.headers]


async def test_every_service_serves_its_metrics(
    clients: dict[str, httpx.AsyncClient], spans: InMemorySpanExporter
) -> None:
    pos = await observed_pos(clients["ingest"])
    customer_id = unique("obs-metrics")
    assert (await pos.enrol(customer_id)).status_code == 202
    assert (await pos.purchase(customer_id, unique("obs-p"))).status_code == 202

    def value(text: str, name: str, **labels: str) -> float:
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{label}="{v}"' in line for label, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    async def points_applied_the_purchase() -> str | None:
        text = (await clients["points"].get("/metrics")).text
        applied = value(
            text,
            "fedelta_events_consumed_total",
            consumer="points",
            type=events.PURCHASE_COMPLETED,
            outcome="applied",
        )
        return text if applied >= 1 else None

    points = await eventually(points_applied_the_purchase, within=WITHIN, what="points' metrics")
    assert value(points, "fedelta_consumer_batch_seconds_count", consumer="points") >= 1
    assert re.search(r'^fedelta_consumer_lag\{consumer="points",', points, re.MULTILINE)
    ingest = (await clients["ingest"].get("/metrics")).text
    assert (
        value(ingest, "fedelta_http_request_seconds_count", route="/v1/purchases", status="202")
        >= 1
    )
    for name in SERVICES:
        text = (await clients[name].get("/metrics")).text
        assert "fedelta_outbox_backlog{" in text, name
        assert "fedelta_outbox_oldest_age_seconds{" in text, name


def _minutes_ago(minutes: int) -> str:
    from datetime import UTC, datetime, timedelta

    moment = datetime.now(UTC) - timedelta(minutes=minutes)
    return moment.isoformat().replace("+00:00", "Z")
