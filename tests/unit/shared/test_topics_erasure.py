"""The erasure deadline on Kafka: the compacted topics (customers and its dead-letter topic)
are created with a bounded compaction lag, a looser existing one is reported and tightened,
and an erasure's tombstones reach both topics under the key the dead-letter copies keep."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.usecases.customers import erasure_tombstones
from shared.messaging import events
from shared.messaging.topics import (
    ALL_TOPICS,
    CUSTOMERS,
    ERASURE_CONFIGS,
    MAX_COMPACTION_LAG_MS,
    PURCHASES,
    TopicSettings,
    TopicSpec,
    TopicState,
    dead_letter_topic,
    parse_settings,
    tightened,
    weaknesses,
)
from tests.support.factories import enrolment
from tests.support.fakes.messaging import (
    NOW,
    TOPIC,
    FakeDatabase,
    FakeProducer,
    Message,
    RecordingHandler,
    fake_consumer,
)

SPECS = {spec.name: spec for spec in ALL_TOPICS}
CLUSTER = TopicSettings()
COMPACTED = [spec for spec in ALL_TOPICS if spec.compacted]
DAY_MS = 24 * 60 * 60 * 1000
# What a broker gives a compacted topic created without them (Kafka's defaults).
BROKER_DEFAULTS = {
    "cleanup.policy": "compact",
    "min.insync.replicas": "2",
    "max.compaction.lag.ms": "9223372036854775807",
    "segment.ms": "604800000",
    "min.cleanable.dirty.ratio": "0.5",
    "delete.retention.ms": "86400000",
}


def as_created(spec: TopicSpec, settings: TopicSettings = CLUSTER) -> TopicState:
    return TopicState(
        name=spec.name,
        partitions=settings.partitions,
        replication_factor=settings.replication_factor,
        config=spec.config(settings),
    )


@pytest.mark.parametrize("spec", COMPACTED, ids=lambda spec: spec.name)
def test_the_customers_topics_are_created_with_a_bounded_compaction_lag(spec: TopicSpec) -> None:
    config = spec.config(CLUSTER)
    assert MAX_COMPACTION_LAG_MS == DAY_MS
    assert {name: config[name] for name in ERASURE_CONFIGS} == {
        "max.compaction.lag.ms": str(DAY_MS),
        "segment.ms": str(DAY_MS),
        "min.cleanable.dirty.ratio": "0.1",
        "delete.retention.ms": str(DAY_MS),
    }
    assert config["min.compaction.lag.ms"] == "0"


def test_a_topic_without_personal_data_has_no_erasure_configs() -> None:
    assert not set(SPECS[PURCHASES].config(CLUSTER)) & set(ERASURE_CONFIGS)


@given(lag=st.integers(min_value=1, max_value=365 * DAY_MS))
def test_no_erasure_config_lets_a_record_outlive_the_lag(lag: int) -> None:
    settings = TopicSettings(max_compaction_lag_ms=lag)
    for spec in COMPACTED:
        config = spec.config(settings)
        assert int(config["max.compaction.lag.ms"]) == lag
        # The active segment is never compacted: it must roll within the lag.
        assert int(config["segment.ms"]) <= lag
        assert int(config["delete.retention.ms"]) <= lag
        assert float(config["min.cleanable.dirty.ratio"]) <= 0.5
        assert weaknesses(spec, settings, as_created(spec, settings)) == []
        # A shorter lag is stricter: never weaker than the default one.
        if lag <= MAX_COMPACTION_LAG_MS:
            assert weaknesses(spec, CLUSTER, as_created(spec, settings)) == []


@pytest.mark.parametrize("spec", COMPACTED, ids=lambda spec: spec.name)
def test_a_compacted_topic_with_the_broker_defaults_is_reported(spec: TopicSpec) -> None:
    state = TopicState(spec.name, 3, 3, config=dict(BROKER_DEFAULTS))
    assert weaknesses(spec, CLUSTER, state) == [
        f"max.compaction.lag.ms 9223372036854775807, at most {DAY_MS} wanted",
        f"segment.ms 604800000, at most {DAY_MS} wanted",
        "min.cleanable.dirty.ratio 0.5, at most 0.1 wanted",
    ]


def test_a_missing_or_unreadable_erasure_config_is_a_weakness() -> None:
    spec = SPECS[CUSTOMERS]
    config = spec.config(CLUSTER)
    del config["max.compaction.lag.ms"]
    config["segment.ms"] = "soon"
    found = weaknesses(spec, CLUSTER, TopicState(spec.name, 3, 3, config=config))
    assert found == [
        f"max.compaction.lag.ms None, at most {DAY_MS} wanted",
        f"segment.ms soon, at most {DAY_MS} wanted",
    ]


def test_a_looser_topic_is_tightened_keeping_its_other_configs_and_stricter_values() -> None:
    spec = SPECS[dead_letter_topic(CUSTOMERS)]
    actual = TopicState(
        spec.name,
        3,
        3,
        config=BROKER_DEFAULTS | {"delete.retention.ms": "1000"},
        overrides={
            "cleanup.policy": "compact",
            "min.insync.replicas": "3",
            "delete.retention.ms": "1000",
        },
    )
    assert tightened(spec.config(CLUSTER), actual) == {
        "cleanup.policy": "compact",
        "min.insync.replicas": "3",  # stronger than asked: kept
        "delete.retention.ms": "1000",  # stricter than asked: kept
        "max.compaction.lag.ms": str(DAY_MS),
        "segment.ms": str(DAY_MS),
        "min.cleanable.dirty.ratio": "0.1",
    }


def test_a_topic_as_created_is_not_altered() -> None:
    for spec in COMPACTED:
        assert tightened(spec.config(CLUSTER), as_created(spec)) is None
    # Nor a topic without personal data, whatever its configs.
    purchases = TopicState(PURCHASES, 3, 3, config=dict(BROKER_DEFAULTS))
    assert tightened(SPECS[PURCHASES].config(CLUSTER), purchases) is None


def test_the_lag_comes_from_the_environment_or_a_flag() -> None:
    environ = {"FEDELTA_TOPIC_MAX_COMPACTION_LAG_MS": "60000"}
    assert TopicSettings.from_env(environ).max_compaction_lag_ms == 60000
    _, settings = parse_settings(["--bootstrap-servers", "k:9092", "--max-compaction-lag-ms", "5"])
    assert settings.max_compaction_lag_ms == 5
    with pytest.raises(ValueError, match="max_compaction_lag_ms"):
        TopicSettings(max_compaction_lag_ms=0)


def test_an_erasure_tombstones_the_customers_topic_and_its_dead_letter_topic() -> None:
    assert erasure_tombstones(CUSTOMERS) == [
        (CUSTOMERS, "tombstone"),
        (dead_letter_topic(CUSTOMERS), "dlq-tombstone"),
    ]


async def test_a_dead_lettered_customer_record_keeps_the_customer_id_as_its_key() -> None:
    """The erasure's tombstone on the dead-letter topic removes the copy only under its key."""
    assert TOPIC == CUSTOMERS
    producer = FakeProducer()
    handler = RecordingHandler({"c1": [ValueError("poison")] * 10})
    owner = fake_consumer(
        handler,
        database=FakeDatabase(),
        dead_letters=producer,
        event_types=frozenset({events.CUSTOMER_ENROLLED}),
    )
    poison = enrolment("c1", at=NOW)
    await owner.process_batch([Message(TOPIC, 0, 4, b"c1", poison.to_bytes(), [])])
    [(topic, value, key, _)] = producer.sent
    assert (topic, key, value) == (dead_letter_topic(CUSTOMERS), b"c1", poison.to_bytes())
