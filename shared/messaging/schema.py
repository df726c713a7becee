"""Generates the published event contract from the payload models:
`python -m shared.messaging.schema` writes docs/events/ (a JSON Schema per event type, and an
AsyncAPI 3 document). A unit test fails when the committed files no longer match the models,
and the official AsyncAPI parser validates them (`deploy/local/node-tools.sh validate`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from shared.messaging import events, topics
from shared.messaging.events import CLOUDEVENTS_JSON, EVENT_KINDS, CloudEvent, EventKind, schema_uri

OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "events"

# Draft-07, not the 2020-12 pydantic has in mind: it is the JSON Schema dialect the AsyncAPI
# parser and most code generators understand, and pydantic's output uses nothing newer
# (`$defs` is only a place that `$ref`s point into).
JSON_SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"
ASYNCAPI_SCHEMA_FORMAT = "application/schema+json;version=draft-07"
KAFKA_BINDING_VERSION = "0.5.0"

# Who writes and who reads each event type: the services' outbox writers and subscriptions.
# shared/ may not import the services, so it is written out here; a unit test holds it
# against each service's HANDLED_TYPES.
PRODUCES: dict[str, tuple[str, ...]] = {
    "ingest": (
        events.CUSTOMER_ENROLLED,
        events.CUSTOMER_UPDATED,
        events.CUSTOMER_ERASED,
        events.PURCHASE_COMPLETED,
        events.PURCHASE_REFUNDED,
        events.POINTS_IMPORTED,
        events.FEEDBACK_RECEIVED,
        events.PARTNER_PROVISIONED,
    ),
    "points": (
        events.POINTS_EARNED,
        events.POINTS_REDEEMED,
        events.POINTS_REVERSED,
        events.POINTS_EXPIRING,
        events.POINTS_EXPIRED,
        events.POINTS_ADJUSTED,
        events.COUPON_ISSUED,
        events.COUPON_REDEEMED,
        events.COUPON_EXPIRED,
        events.POINTS_OFFER_GRANTED,
    ),
    "tiers": (events.TIER_CHANGED, events.TIER_DOWNGRADE_WARNING),
    "notifications": (events.NOTIFICATION_DELIVERED, events.NOTIFICATION_FAILED),
    "engagement": (
        events.ENGAGEMENT_REWARDED,
        events.ENGAGEMENT_REWARD_REVOKED,
        events.STAMP_CARD_COMPLETED,
        events.CHALLENGE_COMPLETED,
        events.BADGE_EARNED,
    ),
    "insights": (events.SEGMENT_ENTERED, events.SEGMENT_LEFT),
}
CONSUMES: dict[str, tuple[str, ...]] = {
    "points": (
        events.CUSTOMER_ENROLLED,
        events.CUSTOMER_UPDATED,
        events.CUSTOMER_ERASED,
        events.PURCHASE_COMPLETED,
        events.PURCHASE_REFUNDED,
        events.TIER_CHANGED,
        events.POINTS_IMPORTED,
        events.ENGAGEMENT_REWARDED,
        events.ENGAGEMENT_REWARD_REVOKED,
        events.SEGMENT_ENTERED,
        events.SEGMENT_LEFT,
    ),
    "tiers": (
        events.CUSTOMER_ENROLLED,
        events.CUSTOMER_UPDATED,
        events.PURCHASE_COMPLETED,
        events.PURCHASE_REFUNDED,
        events.POINTS_IMPORTED,
    ),
    "notifications": (
        events.CUSTOMER_ENROLLED,
        events.CUSTOMER_UPDATED,
        events.CUSTOMER_ERASED,
        events.PURCHASE_COMPLETED,
        events.POINTS_EARNED,
        events.POINTS_REDEEMED,
        events.POINTS_EXPIRING,
        events.COUPON_ISSUED,
        events.TIER_CHANGED,
        events.TIER_DOWNGRADE_WARNING,
        events.ENGAGEMENT_REWARDED,
        events.STAMP_CARD_COMPLETED,
        events.CHALLENGE_COMPLETED,
        events.BADGE_EARNED,
        events.POINTS_OFFER_GRANTED,
    ),
    "engagement": (
        events.CUSTOMER_ENROLLED,
        events.CUSTOMER_UPDATED,
        events.CUSTOMER_ERASED,
        events.PURCHASE_COMPLETED,
        events.PURCHASE_REFUNDED,
        events.TIER_CHANGED,
        events.FEEDBACK_RECEIVED,
        events.SEGMENT_ENTERED,
        events.SEGMENT_LEFT,
    ),
    "insights": (
        events.CUSTOMER_ENROLLED,
        events.CUSTOMER_UPDATED,
        events.CUSTOMER_ERASED,
        events.PURCHASE_COMPLETED,
        events.PURCHASE_REFUNDED,
        events.POINTS_IMPORTED,
        events.POINTS_EARNED,
        events.POINTS_REDEEMED,
        events.POINTS_REVERSED,
        events.POINTS_EXPIRED,
        events.POINTS_ADJUSTED,
        events.COUPON_REDEEMED,
        events.TIER_CHANGED,
        events.ENGAGEMENT_REWARDED,
        events.ENGAGEMENT_REWARD_REVOKED,
        events.FEEDBACK_RECEIVED,
    ),
}
# Envelope attributes that are left out of the JSON when unset: never null on the wire.
_OMITTED_WHEN_UNSET: dict[str, dict[str, Any]] = {
    "dataschema": {"type": "string", "format": "uri", "minLength": 1},
    "traceparent": {
        "type": "string",
        "description": "W3C Trace Context traceparent (CloudEvents distributed tracing).",
        "minLength": 1,
    },
    "tracestate": {
        "type": "string",
        "description": "W3C Trace Context tracestate (CloudEvents distributed tracing).",
    },
}


def event_schema(event_type: str) -> dict[str, Any]:
    kind = EVENT_KINDS[event_type]
    envelope = CloudEvent.model_json_schema()
    payload = kind.payload.model_json_schema()
    # The payload's nested models are defined at the root, where its `#/$defs/...` refs
    # resolve once the payload sits under properties.data.
    definitions = payload.pop("$defs", {})
    properties = envelope["properties"]
    properties["type"] = {"const": event_type, "title": "Type", "type": "string"}
    properties["source"]["format"] = "uri"
    properties.update({name: dict(schema) for name, schema in _OMITTED_WHEN_UNSET.items()})
    properties["data"] = payload
    schema: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_uri(event_type),
        **envelope,
        "title": event_type,
        "required": ["specversion", *envelope["required"]],
    }
    if definitions:
        schema["$defs"] = definitions
    return schema


def _key_of_customer() -> dict[str, Any]:
    return {
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": "The customer's id, the same as the event's `subject`: "
                    "a customer's events share a partition and stay in order.",
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        }
    }


def _key_of_partner() -> dict[str, Any]:
    return {
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The partner's id."},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        }
    }


def _channel_id(topic: str) -> str:
    return topic


def asyncapi() -> dict[str, Any]:
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    for spec in topics.MAIN_TOPICS:
        kinds = [k for k in EVENT_KINDS.values() if k.topic == spec.name]
        channels[_channel_id(spec.name)] = _channel(spec, kinds)
        messages.update({kind.event_type: _message(kind) for kind in kinds})
    return {
        "asyncapi": "3.0.0",
        "id": "urn:fedelta:events",
        "info": _info(),
        "defaultContentType": "application/cloudevents+json",
        "servers": _servers(),
        "channels": channels,
        "operations": _operations(),
        "components": {"messages": messages},
    }


def _channel(spec: topics.TopicSpec, kinds: list[EventKind]) -> dict[str, Any]:
    return {
        "address": spec.name,
        "description": _layout(spec)
        + f". Poison records are copied to `{topics.dead_letter_topic(spec.name)}` with "
        "the headers `fedelta-error`, `fedelta-consumer` and `fedelta-original-*`.",
        "messages": {
            k.event_type: {"$ref": f"#/components/messages/{k.event_type}"} for k in kinds
        },
        "bindings": {
            "kafka": {
                "topic": spec.name,
                "partitions": spec.partitions,
                "topicConfiguration": {
                    "cleanup.policy": ["compact" if spec.compacted else "delete"]
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _layout(spec: topics.TopicSpec) -> str:
    if spec.name == topics.PARTNERS:
        return (
            f"{spec.partitions} partitions (configurable), keyed by partner id; compacted: "
            "the latest record of each partner stays, so a consumer started at any time reads "
            "every partner from the beginning"
        )
    return f"{spec.partitions} partitions (configurable), keyed by customer id" + (
        "; compacted, and an erasure leaves a tombstone (a record without value) "
        "for the customer's key"
        if spec.compacted
        else ""
    )


def _message(kind: EventKind) -> dict[str, Any]:
    return {
        "name": kind.event_type,
        "title": kind.payload.__name__,
        "contentType": "application/cloudevents+json",
        "headers": {
            "type": "object",
            "properties": {
                "content-type": {
                    "type": "string",
                    "const": CLOUDEVENTS_JSON,
                    "description": "CloudEvents Kafka binding: structured mode.",
                },
                "fedelta-event-type": {
                    "type": "string",
                    "const": kind.event_type,
                    "description": "The event's type, readable without parsing.",
                },
            },
        },
        "payload": {
            "schemaFormat": ASYNCAPI_SCHEMA_FORMAT,
            "schema": {"$ref": f"./{kind.event_type}.schema.json"},
        },
        **(_key_of_partner() if kind.topic == topics.PARTNERS else _key_of_customer()),
    }


def _info() -> dict[str, Any]:
    return {
        "title": "Fedelta events",
        "version": "1.0.0",
        "description": "Every event is a CloudEvents 1.0 document in structured mode "
        f"(Kafka header `content-type: {CLOUDEVENTS_JSON}`), with an absolute `source` "
        "(`urn:fedelta:<service>`, ingest's `urn:fedelta:ingest:partner:<partner id>`, and "
        "`urn:fedelta:ingest:console` for a member's consent changed in the wallet) "
        "and a `dataschema` naming its type's JSON Schema.",
        "license": {
            "name": "Apache-2.0",
            "url": "https://www.apache.org/licenses/LICENSE-2.0",
        },
    }


def _servers() -> dict[str, Any]:
    return {
        "local": {
            "host": "localhost:19092",
            "protocol": "kafka",
            "description": "The broker `make up` starts (FEDELTA_KAFKA_PORT).",
        },
        "cluster": {
            "host": "{bootstrap}",
            "protocol": "kafka",
            "description": "A production cluster; topics created with "
            "`python -m shared.messaging.topics` "
            "(replication factor 3, min.insync.replicas 2).",
            "variables": {
                "bootstrap": {
                    "default": "kafka.example.internal:9092",
                    "description": "One of the cluster's bootstrap brokers.",
                }
            },
        },
    }


def receives() -> dict[str, tuple[str, ...]]:
    """CONSUMES, and the partners a consumer of events that name one reads beside them (the
    consumer's runtime does, not its handlers: shared.messaging.partners)."""
    found = {}
    for service, event_types in CONSUMES.items():
        consumed = tuple({EVENT_KINDS[t].topic for t in event_types})
        extra = (events.PARTNER_PROVISIONED,) if topics.checks_partners(consumed) else ()
        found[service] = (*event_types, *extra)
    return found


def _operations() -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for action, table in (("send", PRODUCES), ("receive", receives())):
        for service, event_types in table.items():
            for spec in topics.MAIN_TOPICS:
                on_topic = [t for t in event_types if EVENT_KINDS[t].topic == spec.name]
                if not on_topic:
                    continue
                channel = _channel_id(spec.name)
                operations[f"{service}.{action}.{spec.name}"] = {
                    "action": action,
                    "channel": {"$ref": f"#/channels/{channel}"},
                    "summary": f"{service} {'publishes' if action == 'send' else 'consumes'} "
                    + ", ".join(on_topic),
                    "messages": [
                        {"$ref": f"#/channels/{channel}/messages/{event_type}"}
                        for event_type in on_topic
                    ],
                }
    return operations


def rendered() -> dict[str, str]:
    files = {
        f"{event_type}.schema.json": json.dumps(event_schema(event_type), indent=2) + "\n"
        for event_type in sorted(EVENT_KINDS)
    }
    files["asyncapi.yaml"] = yaml.safe_dump(asyncapi(), sort_keys=False, width=100)
    return files


def main() -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (OUTPUT / name).write_text(text)
    print(f"wrote {len(rendered())} files to {OUTPUT}")


if __name__ == "__main__":
    main()
