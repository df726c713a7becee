"""Migration 0012 announces the partners made before partners were announced (issue 19): each
row it writes to the outbox is the record the relay publishes, a valid event of the contract on
the partners topic, keyed by the partner."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from shared.messaging import events, topics
from shared.messaging.events import CloudEvent

MIGRATION = (
    Path(__file__).resolve().parents[3]
    / "services/ingest/migrations/versions/0012_partners_announced.py"
)


def _migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ingest_0012", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_partner_made_before_is_announced_as_ingest_announces_a_new_one() -> None:
    made = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    now = datetime(2026, 12, 6, tzinfo=UTC)
    row = _migration()._announcement("cafe-1", made, now)
    assert (row["topic"], row["key"], row["created_at"]) == (topics.PARTNERS, "cafe-1", now)
    event = CloudEvent.from_bytes(json.dumps(row["payload"]).encode())
    assert event.id == row["event_id"]
    assert (event.type, event.source, event.subject) == (
        events.PARTNER_PROVISIONED,
        "urn:fedelta:ingest",
        "cafe-1",
    )
    payload = event.payload()
    assert isinstance(payload, events.PartnerProvisioned)
    assert (payload.partner_id, payload.provisioned_at) == ("cafe-1", made)
