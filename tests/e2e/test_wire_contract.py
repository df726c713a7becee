"""The contract as an integrator meets it: real records read from every topic after an
end-to-end flow, each validated against its published JSON Schema and parsed in structured mode
by the official CloudEvents SDKs for Python and for JavaScript (not by Fedelta's own code)."""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka
from cloudevents.core.formats.json import JSONFormat
from jsonschema import Draft7Validator

from fedelta_client import StackClient
from shared.messaging import events, topics
from shared.messaging.kafka import KafkaConnection
from shared.messaging.schema import OUTPUT
from tests.e2e.conftest import Pipeline
from tests.support.kafka import read_all
from tests.support.polling import eventually
from tests.support.stack import REPO

pytestmark = pytest.mark.e2e

STRUCTURED = b"application/cloudevents+json; charset=UTF-8"
EVENT_TYPE_HEADER = "fedelta-event-type"
JS_PARSER = REPO / "deploy" / "contracts" / "parse-kafka-records.mjs"
# What the flow below makes the five services publish about one customer: every topic.
EXPECTED_TYPES = {
    events.CUSTOMER_ENROLLED,
    events.PURCHASE_COMPLETED,
    events.PURCHASE_REFUNDED,
    events.POINTS_EARNED,
    events.POINTS_REVERSED,
    events.TIER_CHANGED,
    events.NOTIFICATION_DELIVERED,
    events.FEEDBACK_RECEIVED,
    events.STAMP_CARD_COMPLETED,
    events.ENGAGEMENT_REWARDED,
}


@cache
def validator(event_type: str) -> Draft7Validator:
    """The schema as published in docs/events/, not as the models would render it now."""
    schema = json.loads((OUTPUT / f"{event_type}.schema.json").read_text())
    return Draft7Validator(schema)


def headers_of(record: Any) -> dict[str, bytes]:
    return {name: bytes(value) for name, value in record.headers or ()}


async def records_of_every_topic(bootstrap: str | KafkaConnection) -> list[Any]:
    found: list[Any] = []
    for spec in topics.MAIN_TOPICS:
        found.extend(record for record in await read_all(bootstrap, spec.name) if record.value)
    return found


async def report_the_flow(pos: StackClient, customer: str) -> None:
    """Enrolment, two purchases (one of a stamp card's category: a full card), a refund and
    the member's feedback on the first purchase."""
    category = f"wire-{uuid.uuid4().hex[:12]}"  # no other test's purchase carries it
    card = await pos.admin_post(
        f"{pos.env.engagement_url}/v1/stamp-cards",
        {
            "name": "One-stamp card",
            "stamps_required": 1,
            "category": category,
            "reward": {"points": 5},
            "starts_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert card.status_code == 201, card.text
    await pos.enrol(customer, f"{customer}@example.com", consent=True)
    first = f"p-{uuid.uuid4()}"
    item = {"sku": "espresso", "category": category, "quantity": "1", "unit_price": "300.00"}
    await pos.purchase(customer, "300.00", first, items=[item])
    await pos.purchase(customer, "250.00")
    refund = await pos.post(
        f"/v1/purchases/{first}/refunds",
        {
            "refund_id": f"r-{uuid.uuid4()}",
            "amount": "50.00",
            "occurred_at": datetime.now(UTC).isoformat(),
        },
    )
    assert refund.status_code == 202, refund.text
    feedback = await pos.post(
        "/v1/feedback",
        {
            "feedback_id": f"f-{uuid.uuid4()}",
            "customer_id": customer,
            "purchase_id": first,
            "kind": "nps",
            "score": 9,
        },
    )
    assert feedback.status_code == 202, feedback.text


def key_of(topic: str, document: dict[str, Any]) -> str:
    """The record key of an event: its subject (the customer), but a feedback's own key on the
    feedback topic, which an erasure's tombstones name one by one."""
    if topic == topics.FEEDBACK:
        return events.feedback_key(document["data"]["partner_id"], document["data"]["feedback_id"])
    subject: str = document["subject"]
    return subject


def subject_of(record: Any) -> str | None:
    """The event's subject, for a structured CloudEvent (a test's poison message has none)."""
    if headers_of(record).get("content-type") != STRUCTURED:
        return None
    subject: str | None = json.loads(record.value).get("subject")
    return subject


def parse_with_javascript(records: list[Any]) -> list[dict[str, Any]]:
    lines = "".join(
        json.dumps(
            {
                "key": record.key.decode() if record.key is not None else None,
                "headers": {k: v.decode() for k, v in headers_of(record).items()},
                "value": base64.b64encode(record.value).decode(),
            }
        )
        + "\n"
        for record in records
    )
    result = subprocess.run(
        ["node", str(JS_PARSER)],
        input=lines,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    parsed = [json.loads(line) for line in result.stdout.splitlines()]
    errors = [outcome["error"] for outcome in parsed if "error" in outcome]
    assert result.returncode == 0 and not errors, (errors[:5], result.stderr[-2000:])
    return parsed


async def test_every_event_on_the_wire_passes_its_schema_and_both_official_sdks(
    pipeline: Pipeline, pos: StackClient
) -> None:
    customer = f"contract-{uuid.uuid4().hex[:12]}"
    await report_the_flow(pos, customer)
    bootstrap = pipeline.stack.kafka

    async def all_published() -> list[Any] | None:
        records = await records_of_every_topic(bootstrap)
        ours = [r for r in records if subject_of(r) == customer]
        published = {headers_of(r).get(EVENT_TYPE_HEADER, b"").decode() for r in ours}
        return records if published >= EXPECTED_TYPES else None

    records = await eventually(
        all_published, within=120, interval=1.0, what="the flow's events on every topic"
    )
    ours = [r for r in records if subject_of(r) == customer]
    # Every topic but the partners one, whose records are about partners: the flow's partner,
    # announced by ingest when stack.sh provisioned it.
    assert {r.topic for r in ours} == {spec.name for spec in topics.MAIN_TOPICS} - {topics.PARTNERS}
    assert pos.env.partner_id in {subject_of(r) for r in records if r.topic == topics.PARTNERS}
    # Every record the services wrote carries the binding's header; a record without it can
    # only be one a test published directly, as a poison message or a redelivery.
    keyed = [r for r in records if r.key == customer.encode()]
    assert keyed and all(headers_of(r).get("content-type") == STRUCTURED for r in keyed)
    wired = [r for r in records if headers_of(r).get("content-type") == STRUCTURED]

    documents = [json.loads(r.value) for r in wired]
    for record, document in zip(wired, documents, strict=True):
        # (a) the published JSON Schema of its type
        errors = sorted(validator(document["type"]).iter_errors(document), key=str)
        assert errors == [], (record.topic, document["type"], [e.message for e in errors[:3]])
        assert document["source"].startswith("urn:fedelta:")
        assert document["dataschema"] == events.schema_uri(document["type"])
        assert headers_of(record)[EVENT_TYPE_HEADER].decode() == document["type"]
        assert record.key.decode() == key_of(record.topic, document)

    # (b) the CloudEvents SDK for Python, Kafka binding, structured mode
    for record, document in zip(wired, documents, strict=True):
        message = KafkaMessage(headers=headers_of(record), key=record.key, value=record.value)
        event = from_kafka(message, JSONFormat())
        assert (event.get_id(), event.get_type(), event.get_source()) == (
            document["id"],
            document["type"],
            document["source"],
        )
        assert event.get_dataschema() == document["dataschema"]

    # (c) the CloudEvents SDK for JavaScript, Kafka binding, structured mode
    parsed = parse_with_javascript(wired)
    assert [(p["id"], p["type"], p["source"], p["subject"]) for p in parsed] == [
        (d["id"], d["type"], d["source"], d["subject"]) for d in documents
    ]
    assert {p["type"] for p in parsed if p["subject"] == customer} >= EXPECTED_TYPES
