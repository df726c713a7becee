"""The dead-letter tooling's pure parts: which topics, since when, what a replay carries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from fedelta_cli.dlq import (
    REPLAYED_FROM_HEADER,
    DeadLetter,
    dead_letter_topics,
    parse_ref,
    parse_since,
    replay_headers,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def letter(value: bytes | None = b"{}") -> DeadLetter:
    return DeadLetter(
        topic="fedelta.purchases.v1.dlq",
        partition=2,
        offset=41,
        dead_lettered_at=NOW,
        key="c-1",
        headers={
            "fedelta-error": "ValidationError",
            "fedelta-original-topic": "fedelta.purchases.v1",
        },
        value=value,
        replayed=False,
    )


def test_topics_by_short_name_topic_name_dlq_name_or_all() -> None:
    assert dead_letter_topics("purchases") == ["fedelta.purchases.v1.dlq"]
    assert dead_letter_topics("fedelta.points.v1") == ["fedelta.points.v1.dlq"]
    assert dead_letter_topics("fedelta.tiers.v1.dlq") == ["fedelta.tiers.v1.dlq"]
    every = dead_letter_topics(None)
    assert len(every) == 5 and all(t.endswith(".dlq") for t in every)


def test_since_takes_durations_and_instants() -> None:
    assert parse_since(None, NOW) is None
    assert parse_since("30m", NOW) == NOW - timedelta(minutes=30)
    assert parse_since("2d", NOW) == NOW - timedelta(days=2)
    assert parse_since("2026-11-01T00:00:00", NOW) == datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="duration"):
        parse_since("yesterday", NOW)


def test_a_ref_names_topic_partition_and_offset() -> None:
    assert parse_ref("fedelta.purchases.v1.dlq:2:41") == ("fedelta.purchases.v1.dlq", 2, 41)
    assert parse_ref(letter().ref) == ("fedelta.purchases.v1.dlq", 2, 41)
    with pytest.raises(ValueError, match="expected"):
        parse_ref("fedelta.purchases.v1.dlq")


def test_a_replay_drops_the_dead_letter_headers_keeps_the_others_and_says_where_from() -> None:
    raw = [
        ("fedelta-error", b"ValidationError"),
        ("fedelta-consumer", b"points"),
        ("fedelta-original-topic", b"fedelta.purchases.v1"),
        ("fedelta-original-partition", b"2"),
        ("fedelta-original-offset", b"7"),
        ("fedelta-attempts", b"5"),
        ("fedelta-event-type", b"fedelta.purchase.completed.v1"),
        ("traceparent", b"00-abc-def-01"),
        (REPLAYED_FROM_HEADER, b"an earlier replay"),
    ]
    assert replay_headers(letter(), raw) == [
        ("fedelta-event-type", b"fedelta.purchase.completed.v1"),
        ("traceparent", b"00-abc-def-01"),
        (REPLAYED_FROM_HEADER, b"fedelta.purchases.v1.dlq:2:41"),
    ]
    assert letter().original_topic == "fedelta.purchases.v1"


def test_the_event_summary_names_ids_never_the_data() -> None:
    body = {
        "id": "e-1",
        "type": "fedelta.customer.enrolled.v1",
        "subject": "c-1",
        "data": {"email": "someone@example.com"},
    }
    summary = letter(json.dumps(body).encode()).event_summary()
    assert summary == {"id": "e-1", "type": "fedelta.customer.enrolled.v1", "subject": "c-1"}
    assert "example.com" not in json.dumps(summary)
    assert letter(b"\xff not json").event_summary() == {"event": "not JSON"}
