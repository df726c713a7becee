"""Topic layout: personal data only where compaction and tombstones can remove it."""

from shared.topics import ALL_TOPICS, CUSTOMERS, dead_letter_topic


def test_the_customers_dead_letter_topic_is_compacted_like_the_customers_topic() -> None:
    specs = {spec.name: spec for spec in ALL_TOPICS}
    assert specs[CUSTOMERS].config()["cleanup.policy"] == "compact"
    assert specs[dead_letter_topic(CUSTOMERS)].config()["cleanup.policy"] == "compact"


def test_only_the_customers_topics_are_compacted() -> None:
    compacted = {spec.name for spec in ALL_TOPICS if spec.compacted}
    assert compacted == {CUSTOMERS, dead_letter_topic(CUSTOMERS)}
