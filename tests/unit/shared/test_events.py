import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.messaging import events, topics
from shared.messaging.events import CloudEvent, UnknownEventType, derived_event_id, new_event

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


@given(
    st.datetimes(
        # hypothesis takes naive bounds and applies `timezones` itself
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    )
)
def test_a_new_events_id_is_a_uuid7_of_its_time(instant: datetime) -> None:
    made = [
        new_event(purchase(Decimal("1.00")), source="ingest/demo", subject="c1", time=t)
        for t in (instant, instant, instant + timedelta(milliseconds=1))
    ]
    ids = [uuid.UUID(event.id) for event in made]
    assert [i.version for i in ids] == [7, 7, 7]
    assert all(i.variant == uuid.RFC_4122 for i in ids)
    assert ids[0].int >> 80 == (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        milliseconds=1
    )
    assert len(set(ids)) == 3
    # A later millisecond sorts after, as text too (the inboxes' key).
    assert max(made[0].id, made[1].id) < made[2].id


def test_source_is_an_absolute_uri_and_an_absolute_one_is_kept() -> None:
    assert events.source_uri("points") == "urn:fedelta:points"
    assert events.source_uri("ingest/partner/p-1.a") == "urn:fedelta:ingest:partner:p-1.a"
    assert events.source_uri("https://pos.example/stores/9") == "https://pos.example/stores/9"
    event = new_event(
        purchase(Decimal("1.00")), source="ingest/partner/demo", subject="c1", time=NOW
    )
    assert event.source == "urn:fedelta:ingest:partner:demo"


def test_every_event_names_the_published_schema_of_its_type() -> None:
    event = new_event(purchase(Decimal("1.00")), source="ingest/demo", subject="c1", time=NOW)
    document = json.loads(event.to_bytes())
    assert document["dataschema"] == (
        "https://fedelta.dev/schemas/events/fedelta.purchase.completed.v1.schema.json"
    )


def test_trace_context_is_carried_when_given_and_absent_otherwise() -> None:
    untraced = json.loads(
        new_event(
            purchase(Decimal("1.00")), source="ingest/demo", subject="c1", time=NOW
        ).to_bytes()
    )
    assert "traceparent" not in untraced
    assert "tracestate" not in untraced
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    traced = new_event(
        purchase(Decimal("1.00")), source="ingest/demo", subject="c1", time=NOW, traceparent=parent
    )
    assert json.loads(traced.to_bytes())["traceparent"] == parent
    assert CloudEvent.from_bytes(traced.to_bytes()).traceparent == parent


def test_an_event_from_before_dataschema_existed_still_parses() -> None:
    old = (
        b'{"specversion":"1.0","id":"1","source":"ingest/demo","type":"fedelta.customer.erased.v1",'
        b'"subject":"c1","time":"2026-11-22T10:15:00Z","datacontenttype":"application/json",'
        b'"data":{"customer_id":"c1"}}'
    )
    event = CloudEvent.from_bytes(old)
    assert event.dataschema is None
    assert "dataschema" not in json.loads(event.to_bytes())
    assert event.data_as(events.CustomerErased).customer_id == "c1"


_TEXT = st.characters(exclude_categories=["Cs"])  # encodable as UTF-8


@given(cause=st.text(_TEXT, max_size=80), purpose=st.text(_TEXT, max_size=20))
def test_a_derived_id_is_the_rfc_4122_name_based_uuid_of_its_cause_and_purpose(
    cause: str, purpose: str
) -> None:
    expected = uuid.uuid5(uuid.UUID("6f1c1a53-2d4e-4f0e-9a43-5b0f7c0de1a1"), f"{cause}/{purpose}")
    assert derived_event_id(cause, purpose) == str(expected)


@given(
    total=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2),
    event_id=st.one_of(st.none(), st.uuids().map(str)),
    traceparent=st.sampled_from([None, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]),
)
def test_new_event_builds_what_model_construct_builds(
    total: Decimal, event_id: str | None, traceparent: str | None
) -> None:
    """`new_event` sets the envelope up itself (a third of model_construct's time): the event
    must be the one model_construct makes, in equality, fields set, extras, JSON, copies and
    a parse of its own bytes; a pydantic that keeps its models otherwise fails here."""
    payload = purchase(total)
    event = new_event(
        payload,
        source="ingest/demo",
        subject="c1",
        time=NOW,
        event_id=event_id,
        traceparent=traceparent,
    )
    # As new_event called it before: every envelope field given.
    constructed = CloudEvent.model_construct(
        **{name: getattr(event, name) for name in CloudEvent.model_fields}
    )
    assert event == constructed
    assert event.model_fields_set == constructed.model_fields_set == set(CloudEvent.model_fields)
    assert event.model_extra == constructed.model_extra == {}
    assert event.model_dump_json() == constructed.model_dump_json()
    assert CloudEvent.from_bytes(event.to_bytes()) == event
    assert event.model_copy(update={"subject": "c2"}).subject == "c2"
    assert event.data_as(events.PurchaseCompleted) == payload
    with pytest.raises(ValidationError):  # still frozen
        event.subject = "c3"  # type: ignore[misc]
