"""The generated contract: up to date with the models, self-consistent JSON Schemas that accept
the events the models make, and an AsyncAPI document that says who sends and receives what."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from services.engagement.handlers import HANDLED_TYPES as ENGAGEMENT_HANDLES
from services.notifications.handlers import HANDLED_TYPES as NOTIFICATIONS_HANDLES
from services.points.handlers import HANDLED_TYPES as POINTS_HANDLES
from services.tiers.handlers import HANDLED_TYPES as TIERS_HANDLES
from shared.messaging import events, topics
from shared.messaging.events import EVENT_KINDS, new_event, schema_uri
from shared.messaging.schema import CONSUMES, OUTPUT, PRODUCES, asyncapi, event_schema, rendered

NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)


def test_the_committed_event_contract_matches_the_models() -> None:
    stale = [
        name
        for name, text in rendered().items()
        if not (OUTPUT / name).exists() or (OUTPUT / name).read_text() != text
    ]
    assert stale == [], "run `python -m shared.messaging.schema` and commit docs/events/"


@pytest.mark.parametrize("event_type", sorted(EVENT_KINDS))
def test_each_schema_is_draft_7_with_its_id_and_required_specversion(event_type: str) -> None:
    schema = event_schema(event_type)
    Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["$id"] == schema_uri(event_type)
    assert "specversion" in schema["required"]
    # Every local ref resolves from the root, where the validator looks.
    text = json.dumps(schema)
    for name in schema.get("$defs", {}):
        assert f'"#/$defs/{name}"' in text
    assert '"$defs"' not in json.dumps(schema["properties"])


def validate(event: events.CloudEvent) -> None:
    Draft7Validator(event_schema(event.type)).validate(json.loads(event.to_bytes()))


def test_events_with_nested_models_validate_against_their_schema() -> None:
    enrolled = events.CustomerEnrolled(
        customer_id="c1",
        partner_id="demo",
        enrolled_at=NOW,
        email="ada@example.com",
        consent=events.Consent(email=True),
    )
    purchase = events.PurchaseCompleted(
        purchase_id="p1",
        partner_id="demo",
        customer_id="c1",
        occurred_at=NOW,
        currency="EUR",
        total=Decimal("12.50"),
        items=[events.PurchaseItem(sku="s1", quantity=1, unit_price=Decimal("12.50"))],
    )
    warning = events.TierDowngradeWarning(
        customer_id="c1",
        tier="gold",
        would_become="silver",
        review_at=NOW,
        amount_to_keep_tier=Decimal("99.99"),
    )
    traced = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    for payload in (enrolled, purchase, warning):
        validate(new_event(payload, source="ingest/partner/demo", subject="c1", time=NOW))
    validate(new_event(enrolled, source="points", subject="c1", time=NOW, traceparent=traced))


def test_a_wrong_event_fails_its_schema() -> None:
    event = new_event(events.CustomerErased(customer_id="c1"), source="x", subject="c1", time=NOW)
    document: dict[str, Any] = json.loads(event.to_bytes())
    del document["specversion"]
    with pytest.raises(ValidationError, match="specversion"):
        Draft7Validator(event_schema(event.type)).validate(document)
    document = json.loads(event.to_bytes()) | {"type": events.CUSTOMER_UPDATED}
    with pytest.raises(ValidationError):
        Draft7Validator(event_schema(event.type)).validate(document)


def test_who_sends_and_receives_what_matches_the_services() -> None:
    assert set(CONSUMES["points"]) == POINTS_HANDLES
    assert set(CONSUMES["tiers"]) == TIERS_HANDLES
    assert set(CONSUMES["notifications"]) == NOTIFICATIONS_HANDLES
    assert set(CONSUMES["engagement"]) == ENGAGEMENT_HANDLES
    produced = [event_type for types in PRODUCES.values() for event_type in types]
    assert sorted(produced) == sorted(EVENT_KINDS)  # each type has exactly one producer


def test_the_asyncapi_document_has_servers_operations_and_message_keys() -> None:
    document = asyncapi()
    assert document["asyncapi"] == "3.0.0"
    assert set(document["servers"]) == {"local", "cluster"}
    assert set(document["channels"]) == {spec.name for spec in topics.MAIN_TOPICS}
    operations = document["operations"]
    assert operations["ingest.send.fedelta.customers.v1"]["action"] == "send"
    assert operations["points.receive.fedelta.tiers.v1"]["messages"] == [
        {"$ref": f"#/channels/fedelta.tiers.v1/messages/{events.TIER_CHANGED}"}
    ]
    assert "tiers.receive.fedelta.tiers.v1" not in operations
    for message in document["components"]["messages"].values():
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
        assert message["contentType"] == "application/cloudevents+json"
