import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared import events, topics
from shared.events import CloudEvent, UnknownEventType, derived_event_id, new_event

NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)


def purchase(total: Decimal) -> events.PurchaseCompleted:
    return events.PurchaseCompleted(
        purchase_id="p1",
        partner_id="demo",
        customer_id="c1",
        occurred_at=datetime(2026, 11, 22, 11, 15, tzinfo=timezone(timedelta(hours=1))),
        currency="EUR",
        total=total,
    )


def test_envelope_is_cloudevents_structured_json_with_money_as_string() -> None:
    event = new_event(purchase(Decimal("49.99")), source="ingest/demo", subject="c1", time=NOW)
    document = json.loads(event.to_bytes())
    assert document["specversion"] == "1.0"
    assert document["type"] == "fedelta.purchase.completed.v1"
    assert document["time"] == "2026-11-22T10:15:00Z"
    assert document["datacontenttype"] == "application/json"
    assert document["data"]["total"] == "49.99"
    assert document["data"]["occurred_at"] == "2026-11-22T10:15:00Z"
    assert event.topic == topics.PURCHASES


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000.00"), places=2))
def test_money_survives_the_wire_exactly(total: Decimal) -> None:
    event = new_event(purchase(total), source="ingest/demo", subject="c1", time=NOW)
    payload = CloudEvent.from_bytes(event.to_bytes()).payload()
    assert isinstance(payload, events.PurchaseCompleted)
    assert payload.total == total


def test_naive_times_are_refused() -> None:
    naive = datetime(2026, 1, 1)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValidationError, match="timezone"):
        CloudEvent(
            id="1",
            source="s",
            type=events.CUSTOMER_ERASED,
            subject="c1",
            time=naive,
            data={"customer_id": "c1"},
        )


def test_floats_with_more_than_two_decimals_are_refused() -> None:
    with pytest.raises(ValidationError):
        purchase(Decimal("1.005"))


def test_unknown_types_and_bad_data_are_reported() -> None:
    unknown = CloudEvent(id="1", source="s", type="x.y.v1", subject="c1", time=NOW, data={})
    with pytest.raises(UnknownEventType):
        unknown.payload()
    bad = CloudEvent(
        id="1",
        source="s",
        type=events.PURCHASE_COMPLETED,
        subject="c1",
        time=NOW,
        data={"purchase_id": "p1"},
    )
    with pytest.raises(ValidationError):
        bad.payload()


def test_every_event_type_has_a_topic_of_the_contract() -> None:
    assert {kind.topic for kind in events.EVENT_KINDS.values()} == {
        spec.name for spec in topics.MAIN_TOPICS
    }


def test_derived_ids_are_stable_and_distinct() -> None:
    assert derived_event_id("e1", "welcome") == derived_event_id("e1", "welcome")
    assert derived_event_id("e1", "welcome") != derived_event_id("e1", "earned")
    assert derived_event_id("e1", "welcome") != derived_event_id("e2", "welcome")
