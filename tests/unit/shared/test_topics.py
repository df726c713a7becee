"""Topic layout: personal data only where compaction and tombstones can remove it, and
settings fit for a cluster whose shortfalls are reported, never accepted in silence."""

import pytest

from shared.messaging.topics import (
    ALL_TOPICS,
    CUSTOMERS,
    FEEDBACK,
    PARTNERS,
    PURCHASES,
    RETENTION_MS,
    SEGMENTS,
    WEAKER_EXIT_STATUS,
    TopicSettings,
    TopicSpec,
    TopicState,
    dead_letter_topic,
    parse_settings,
    weaknesses,
)

SPECS = {spec.name: spec for spec in ALL_TOPICS}
CLUSTER = TopicSettings()


def test_the_customers_dead_letter_topic_is_compacted_like_the_customers_topic() -> None:
    assert SPECS[CUSTOMERS].config()["cleanup.policy"] == "compact"
    assert SPECS[dead_letter_topic(CUSTOMERS)].config()["cleanup.policy"] == "compact"


def test_only_the_customers_feedback_and_partners_topics_are_compacted() -> None:
    # The only topics with personal data: profiles, and feedback (its comment); and the
    # partners, whose latest record each must stay for a consumer started at any time.
    compacted = {spec.name for spec in ALL_TOPICS if spec.compacted}
    assert compacted == {
        CUSTOMERS,
        dead_letter_topic(CUSTOMERS),
        FEEDBACK,
        dead_letter_topic(FEEDBACK),
        PARTNERS,
    }


def test_the_partners_topic_has_no_dead_letter_topic() -> None:
    # Read without a group, skipping what is not a partner's record: nothing is dead-lettered.
    names = {spec.name for spec in ALL_TOPICS}
    assert PARTNERS in names and dead_letter_topic(PARTNERS) not in names


def test_the_segments_topic_and_its_dead_letters_are_created_like_the_purchases_one() -> None:
    # Issue 21: membership changes carry a customer id and segment names, no personal data:
    # deleted by time like the other event topics, never compacted.
    for name in (SEGMENTS, dead_letter_topic(SEGMENTS)):
        assert SPECS[name].config(CLUSTER) == SPECS[PURCHASES].config(CLUSTER), name
    assert SEGMENTS == "fedelta.segments.v1"


def test_the_defaults_are_for_a_cluster_and_local_is_one_broker() -> None:
    assert (CLUSTER.replication_factor, CLUSTER.min_insync_replicas) == (3, 2)
    local = TopicSettings.local()
    assert (local.replication_factor, local.min_insync_replicas) == (1, 1)


def test_topics_are_created_with_min_isr_and_a_retention_where_records_are_deleted() -> None:
    purchases = SPECS[PURCHASES].config(CLUSTER)
    assert purchases == {
        "cleanup.policy": "delete",
        "min.insync.replicas": "2",
        "retention.ms": str(RETENTION_MS),
    }
    customers = SPECS[CUSTOMERS].config(CLUSTER)
    assert customers["min.insync.replicas"] == "2"
    assert "retention.ms" not in customers  # compaction, not time, removes its records


@pytest.mark.parametrize(
    "settings",
    [
        {"replication_factor": 1, "min_insync_replicas": 2},
        {"partitions": 0},
        {"retention_ms": 0},
    ],
)
def test_impossible_settings_are_refused(settings: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        TopicSettings(**settings)


def test_settings_come_from_the_environment_and_a_flag_wins() -> None:
    environ = {"FEDELTA_TOPIC_REPLICATION_FACTOR": "5", "FEDELTA_TOPIC_MIN_ISR": "3"}
    assert TopicSettings.from_env(environ) == TopicSettings(
        replication_factor=5, min_insync_replicas=3
    )
    with pytest.raises(ValueError, match="FEDELTA_TOPIC_PARTITIONS"):
        TopicSettings.from_env({"FEDELTA_TOPIC_PARTITIONS": "three"})


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDELTA_TOPIC_PARTITIONS", "6")
    monkeypatch.setenv("FEDELTA_TOPIC_REPLICATION_FACTOR", "3")
    bootstrap, settings = parse_settings(
        ["--bootstrap-servers", "k:9092", "--replication-factor", "1", "--min-insync-replicas", "1"]
    )
    assert bootstrap == "k:9092"
    assert settings == TopicSettings(partitions=6, replication_factor=1, min_insync_replicas=1)


def test_flags_that_contradict_each_other_stop_the_command() -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_settings(["--bootstrap-servers", "k:9092", "--replication-factor", "1"])
    assert stopped.value.code == 2  # min ISR 2 (the default) cannot exceed RF 1
    assert WEAKER_EXIT_STATUS not in (0, 2)


def state_as_created(spec: TopicSpec, settings: TopicSettings) -> TopicState:
    return TopicState(
        name=spec.name,
        partitions=settings.partitions,
        replication_factor=settings.replication_factor,
        config=spec.config(settings),
    )


@pytest.mark.parametrize("spec", ALL_TOPICS, ids=lambda spec: spec.name)
def test_a_topic_as_it_would_be_created_has_no_weakness(spec: TopicSpec) -> None:
    assert weaknesses(spec, CLUSTER, state_as_created(spec, CLUSTER)) == []


def test_every_weaker_setting_is_named() -> None:
    spec = SPECS[PURCHASES]
    single_broker = TopicState(
        name=spec.name,
        partitions=1,
        replication_factor=1,
        config={"cleanup.policy": "compact", "min.insync.replicas": "1", "retention.ms": "1000"},
    )
    found = weaknesses(spec, CLUSTER, single_broker)
    assert found == [
        "1 partitions, 3 wanted",
        "replication factor 1, 3 wanted",
        "cleanup.policy compact, delete wanted",
        "min.insync.replicas 1, 2 wanted",
        f"retention.ms 1000, at least {RETENTION_MS} wanted",
    ]


def test_stronger_settings_and_unlimited_retention_are_not_weaknesses() -> None:
    spec = SPECS[PURCHASES]
    stronger = TopicState(
        name=spec.name,
        partitions=12,
        replication_factor=5,
        config={"cleanup.policy": "delete", "min.insync.replicas": "3", "retention.ms": "-1"},
    )
    assert weaknesses(spec, CLUSTER, stronger) == []


def test_a_compacted_topic_is_not_judged_by_retention() -> None:
    spec = SPECS[CUSTOMERS]
    state = state_as_created(spec, CLUSTER)
    assert "retention.ms" not in state.config
    assert weaknesses(spec, CLUSTER, state) == []
