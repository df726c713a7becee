"""Generates the published event contract from the payload models:
`python -m shared.schema` writes docs/events/ (a JSON Schema per event type, and AsyncAPI).
A unit test fails when the committed files no longer match the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from shared import topics
from shared.events import EVENT_KINDS, CloudEvent

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "events"


def event_schema(event_type: str) -> dict[str, Any]:
    kind = EVENT_KINDS[event_type]
    envelope = CloudEvent.model_json_schema()
    envelope["title"] = event_type
    envelope["properties"]["type"] = {"const": event_type}
    envelope["properties"]["data"] = kind.payload.model_json_schema()
    return envelope


def asyncapi() -> dict[str, Any]:
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    for spec in topics.MAIN_TOPICS:
        kinds = [k for k in EVENT_KINDS.values() if k.topic == spec.name]
        channels[spec.name] = {
            "address": spec.name,
            "description": f"{spec.partitions} partitions, key customer_id"
            + (", compacted" if spec.compacted else ""),
            "messages": {
                k.event_type: {"$ref": f"#/components/messages/{k.event_type}"} for k in kinds
            },
        }
        for kind in kinds:
            messages[kind.event_type] = {
                "name": kind.event_type,
                "contentType": "application/cloudevents+json",
                "payload": {"$ref": f"./{kind.event_type}.schema.json"},
            }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Fedelta events", "version": "1.0.0"},
        "channels": channels,
        "components": {"messages": messages},
    }


def rendered() -> dict[str, str]:
    files = {
        f"{event_type}.schema.json": json.dumps(event_schema(event_type), indent=2) + "\n"
        for event_type in sorted(EVENT_KINDS)
    }
    files["asyncapi.yaml"] = yaml.safe_dump(asyncapi(), sort_keys=False)
    return files


def main() -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (OUTPUT / name).write_text(text)
    print(f"wrote {len(rendered())} files to {OUTPUT}")


if __name__ == "__main__":
    main()
