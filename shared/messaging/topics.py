"""Topic names and their layout; `python -m shared.messaging.topics` creates any that are
missing and
reports the existing ones that are weaker than asked for.

The defaults are for a cluster: replication factor 3 and `min.insync.replicas` 2, so that a
write acknowledged with acks=all (what every producer of ours asks for) is on two brokers.
A single local broker needs `--replication-factor 1 --min-insync-replicas 1` (the local stack
passes them). Each setting also comes from the environment (FEDELTA_TOPIC_PARTITIONS,
FEDELTA_TOPIC_REPLICATION_FACTOR, FEDELTA_TOPIC_MIN_ISR, FEDELTA_TOPIC_RETENTION_MS,
FEDELTA_TOPIC_MAX_COMPACTION_LAG_MS); a flag wins.

The erasure deadline: the customers and feedback topics and their dead-letter topics (the only
ones with personal data) are compacted with `max.compaction.lag.ms` (24 h by default),
`segment.ms` no larger, a low `min.cleanable.dirty.ratio` and `delete.retention.ms` no longer
than the lag, so a record that a later one (an erasure's tombstone) supersedes is compacted
away within the lag once its segment rolls; ingest rolls a quiet partition's segment with a
periodic write of a reserved key to every partition of each
(services/ingest/adapters/quiet_partitions.py; see docs/operations.md, *Erasure on Kafka*).

An existing topic's layout is never changed: fewer partitions would move keys to other
partitions, and replication is the operator's to reassign. When one is weaker than asked (fewer
partitions, a lower replication factor or min ISR, a shorter retention, another cleanup policy)
the command names each difference and exits with status 3 after creating what was missing.
The erasure configs alone are altered in place where an existing compacted topic's are looser
(they move no record; each only tightens, a stricter value is kept).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.messaging.connection import KafkaConnection, client_options

CUSTOMERS = "fedelta.customers.v1"
PURCHASES = "fedelta.purchases.v1"
POINTS = "fedelta.points.v1"
TIERS = "fedelta.tiers.v1"
NOTIFICATIONS = "fedelta.notifications.v1"
ENGAGEMENT = "fedelta.engagement.v1"
# Members' feedback: compacted and keyed by the feedback's own key, so that
# an erasure's tombstone per feedback removes its comment (docs/operations.md, *Erasure on Kafka*).
FEEDBACK = "fedelta.feedback.v1"
# Segment membership changes (insights), keyed by member: read models in points and engagement.
SEGMENTS = "fedelta.segments.v1"
# The partners ingest has provisioned, keyed by partner id and compacted (the latest record of
# each partner stays for ever): every consumer of a topic below reads it to know them
# (shared.messaging.partners).
PARTNERS = "fedelta.partners.v1"
# Ingest's topics whose events name the partner that reported them (`partner_id`): a consumer
# of one refuses an event of a partner nobody provisioned.
PARTNER_TOPICS = (CUSTOMERS, PURCHASES, FEEDBACK)


def checks_partners(consumed: tuple[str, ...] | list[str]) -> bool:
    """Whether a consumer of these topics reads the partners topic to check their events."""
    return any(topic in PARTNER_TOPICS for topic in consumed)


log = logging.getLogger(__name__)

WEAKER_EXIT_STATUS = 3


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


PARTITIONS = 3
# Kafka's own default, written down: the consumers' inbox retention (`retention_days`, 30)
# must stay longer than this so that a redelivered event is still recognised.
RETENTION_MS = 7 * 24 * 60 * 60 * 1000
# The erasure deadline: how long a superseded record (a profile an erasure's tombstone
# follows) may stay on a compacted topic once its segment rolls.
MAX_COMPACTION_LAG_MS = 24 * 60 * 60 * 1000
# The share of a compacted log's superseded records at which the cleaner starts without
# waiting for the lag (Kafka's default is 0.5).
MIN_CLEANABLE_DIRTY_RATIO = "0.1"


@dataclass(frozen=True)
class TopicSettings:
    """What every topic is created with; the defaults are for a cluster of three or more."""

    partitions: int = PARTITIONS
    replication_factor: int = 3
    min_insync_replicas: int = 2
    retention_ms: int = RETENTION_MS
    max_compaction_lag_ms: int = MAX_COMPACTION_LAG_MS

    def __post_init__(self) -> None:
        for name in ENV_VARIABLES:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.min_insync_replicas > self.replication_factor:
            # No write could ever be acknowledged by acks=all.
            raise ValueError("min_insync_replicas cannot exceed replication_factor")

    @classmethod
    def local(cls) -> TopicSettings:
        """One broker: the local and test stacks."""
        return cls(replication_factor=1, min_insync_replicas=1)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> TopicSettings:
        values: dict[str, int] = {}
        for name, variable in ENV_VARIABLES.items():
            raw = environ.get(variable)
            if raw is None or raw == "":
                continue
            try:
                values[name] = int(raw)
            except ValueError:
                raise ValueError(f"{variable}={raw!r} is not a whole number") from None
        return cls(**values)


ENV_VARIABLES = {
    "partitions": "FEDELTA_TOPIC_PARTITIONS",
    "replication_factor": "FEDELTA_TOPIC_REPLICATION_FACTOR",
    "min_insync_replicas": "FEDELTA_TOPIC_MIN_ISR",
    "retention_ms": "FEDELTA_TOPIC_RETENTION_MS",
    "max_compaction_lag_ms": "FEDELTA_TOPIC_MAX_COMPACTION_LAG_MS",
}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False

    def config(self, settings: TopicSettings | None = None) -> dict[str, str]:
        """The topic-level configs to create it with (the cleanup policy alone without settings)."""
        if self.compacted:
            # Personal data lives only on compacted topics (the partners one has none):
            # compaction plus erasure tombstones remove it.
            config = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
        else:
            config = {"cleanup.policy": "delete"}
        if settings is not None:
            config["min.insync.replicas"] = str(settings.min_insync_replicas)
            if self.compacted:
                config |= erasure_config(settings)
            else:
                config["retention.ms"] = str(settings.retention_ms)
        return config


def erasure_config(settings: TopicSettings) -> dict[str, str]:
    """The configs that bound how long a superseded record stays on a compacted topic: the
    cleaner must compact a dirty record within the lag, the active segment (never compacted)
    rolls within it, and the tombstone itself goes one lag after its segment is cleaned."""
    lag = str(settings.max_compaction_lag_ms)
    return {
        "max.compaction.lag.ms": lag,
        "segment.ms": lag,
        "min.cleanable.dirty.ratio": MIN_CLEANABLE_DIRTY_RATIO,
        "delete.retention.ms": lag,
    }


ERASURE_CONFIGS = (
    "max.compaction.lag.ms",
    "segment.ms",
    "min.cleanable.dirty.ratio",
    "delete.retention.ms",
)


MAIN_TOPICS = (
    TopicSpec(CUSTOMERS, PARTITIONS, compacted=True),
    TopicSpec(PURCHASES, PARTITIONS),
    TopicSpec(POINTS, PARTITIONS),
    TopicSpec(TIERS, PARTITIONS),
    TopicSpec(NOTIFICATIONS, PARTITIONS),
    TopicSpec(ENGAGEMENT, PARTITIONS),
    TopicSpec(FEEDBACK, PARTITIONS, compacted=True),
    TopicSpec(SEGMENTS, PARTITIONS),
    TopicSpec(PARTNERS, PARTITIONS, compacted=True),
)
# A dead-letter topic keeps its topic's policy: the customers one holds personal data too, so
# it is compacted, and an erasure's tombstone removes a dead-lettered profile as well.
# The partners topic has none: it is read without a consumer group, and a record that is not a
# partner's is skipped there (shared.messaging.partners).
ALL_TOPICS = MAIN_TOPICS + tuple(
    TopicSpec(dead_letter_topic(spec.name), spec.partitions, compacted=spec.compacted)
    for spec in MAIN_TOPICS
    if spec.name != PARTNERS
)


@dataclass(frozen=True)
class TopicState:
    """A topic as the cluster has it."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)
    # The configs set on the topic itself (not the broker's defaults): what an alteration keeps.
    overrides: dict[str, str] = field(default_factory=dict, compare=False)


def weaknesses(spec: TopicSpec, settings: TopicSettings, actual: TopicState) -> list[str]:
    """How an existing topic falls short of what it would be created with (empty: it does not)."""
    found = []
    if actual.partitions < settings.partitions:
        found.append(f"{actual.partitions} partitions, {settings.partitions} wanted")
    if actual.replication_factor < settings.replication_factor:
        found.append(
            f"replication factor {actual.replication_factor}, {settings.replication_factor} wanted"
        )
    wanted = spec.config(settings)
    policy = actual.config.get("cleanup.policy")
    if policy != wanted["cleanup.policy"]:
        found.append(f"cleanup.policy {policy}, {wanted['cleanup.policy']} wanted")
    min_isr = _as_int(actual.config.get("min.insync.replicas"))
    if min_isr is None or min_isr < settings.min_insync_replicas:
        found.append(
            f"min.insync.replicas {actual.config.get('min.insync.replicas')}, "
            f"{settings.min_insync_replicas} wanted"
        )
    if "retention.ms" in wanted:
        retention = _as_int(actual.config.get("retention.ms"))
        # -1 keeps records for ever: not weaker.
        if retention is None or 0 <= retention < settings.retention_ms:
            found.append(
                f"retention.ms {actual.config.get('retention.ms')}, "
                f"at least {settings.retention_ms} wanted"
            )
    if spec.compacted:
        found += erasure_weaknesses(wanted, actual.config)
    return found


def erasure_weaknesses(wanted: Mapping[str, str], actual: Mapping[str, str]) -> list[str]:
    """Each erasure config that is looser than wanted (absent: the broker's default, looser)."""
    return [
        f"{name} {actual.get(name)}, at most {wanted[name]} wanted"
        for name in ERASURE_CONFIGS
        if not _at_most(actual.get(name), wanted[name])
    ]


def tightened(wanted: Mapping[str, str], actual: TopicState) -> dict[str, str] | None:
    """The topic's own configs with each looser erasure config set to the wanted value (a
    stricter one kept), or None when none is looser: what an alteration writes (Kafka's
    AlterConfigs replaces a topic's configs as a whole, so the others are carried over)."""
    looser = {
        name: wanted[name]
        for name in ERASURE_CONFIGS
        if name in wanted and not _at_most(actual.config.get(name), wanted[name])
    }
    if not looser:
        return None
    return dict(actual.overrides) | looser


def _at_most(value: str | None, limit: str) -> bool:
    try:
        return value is not None and 0 <= float(value) <= float(limit)
    except ValueError:
        return False


def _as_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class EnsureResult:
    created: list[str]
    # Topic name -> how it is weaker than asked; left as it is.
    weaker: dict[str, list[str]]
    # Compacted topics whose erasure configs were tightened in place.
    altered: list[str] = field(default_factory=list)


REPORTED_CONFIGS = ("cleanup.policy", "min.insync.replicas", "retention.ms", *ERASURE_CONFIGS)
# DescribeConfigs: config_source 1 is DYNAMIC_TOPIC_CONFIG (v1+); v0 says is_default instead.
_TOPIC_CONFIG_SOURCE = 1


async def describe_topics(
    bootstrap_servers: str | KafkaConnection, names: Sequence[str] | None = None
) -> list[TopicState]:
    """The actual layout and main configs of Fedelta's topics (by default) that exist."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**client_options(bootstrap_servers))
    await admin.start()
    try:
        return await _describe(admin, list(names or [spec.name for spec in ALL_TOPICS]))
    finally:
        await admin.close()


async def _describe(admin: Any, names: list[str]) -> list[TopicState]:
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    existing = set(await admin.list_topics())
    names = [name for name in names if name in existing]
    if not names:
        return []
    layouts = {
        topic["topic"]: topic
        for topic in await admin.describe_topics(names)
        if topic.get("error_code", 0) == 0
    }
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    )
    configs: dict[str, dict[str, str]] = {}
    overrides: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.resources:
            # (error_code, error_message, resource_type, resource_name, config_entries)
            entries = resource[4]
            configs[resource[3]] = {
                entry[0]: entry[1] for entry in entries if entry[0] in REPORTED_CONFIGS
            }
            overrides[resource[3]] = {
                entry[0]: entry[1] for entry in entries if _set_on_topic(entry)
            }
    states = []
    for name in names:
        layout = layouts.get(name)
        if layout is None:
            continue
        partitions = layout["partitions"]
        states.append(
            TopicState(
                name=name,
                partitions=len(partitions),
                replication_factor=min((len(p["replicas"]) for p in partitions), default=0),
                config=configs.get(name, {}),
                overrides=overrides.get(name, {}),
            )
        )
    return states


def _set_on_topic(entry: Any) -> bool:
    # (name, value, read_only, is_default (v0) or config_source (v1+), is_sensitive, ...)
    marker = entry[3]
    if isinstance(marker, bool):
        return not marker
    return bool(marker == _TOPIC_CONFIG_SOURCE) and entry[1] is not None


async def ensure_topics(
    bootstrap_servers: str | KafkaConnection, settings: TopicSettings | None = None
) -> list[str]:
    """Create the topics that do not exist yet (with TopicSettings.from_env() unless given);
    returns the names created, and logs a warning for each existing topic that is weaker."""
    result = await ensure_topic_layout(bootstrap_servers, settings)
    for name, found in sorted(result.weaker.items()):
        log.warning("topic %s is weaker than asked: %s", name, "; ".join(found))
    return result.created


async def ensure_topic_layout(
    bootstrap_servers: str | KafkaConnection, settings: TopicSettings | None = None
) -> EnsureResult:
    """Create the topics that do not exist yet, and compare the others with `settings`
    (TopicSettings.from_env() when not given)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    settings = settings or TopicSettings.from_env()
    admin = AIOKafkaAdminClient(**client_options(bootstrap_servers))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in ALL_TOPICS if spec.name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        name=spec.name,
                        num_partitions=settings.partitions,
                        replication_factor=settings.replication_factor,
                        topic_configs=spec.config(settings),
                    )
                    for spec in missing
                ]
            )
        present = [spec for spec in ALL_TOPICS if spec.name in existing]
        altered = await tighten(admin, present, settings)
        states = {state.name: state for state in await _describe(admin, [s.name for s in present])}
        weaker = {
            spec.name: found
            for spec in present
            if spec.name in states and (found := weaknesses(spec, settings, states[spec.name]))
        }
        return EnsureResult(created=[spec.name for spec in missing], weaker=weaker, altered=altered)
    finally:
        await admin.close()


async def tighten(admin: Any, specs: Sequence[TopicSpec], settings: TopicSettings) -> list[str]:
    """Alters the existing compacted topics whose erasure configs are looser than asked;
    returns their names."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    compacted = {spec.name: spec for spec in specs if spec.compacted}
    changes = {
        state.name: config
        for state in await _describe(admin, list(compacted))
        if state.config.get("cleanup.policy") == "compact"
        and (config := tightened(compacted[state.name].config(settings), state)) is not None
    }
    if not changes:
        return []
    responses = await admin.alter_configs(
        [
            ConfigResource(ConfigResourceType.TOPIC, name, configs=config)
            for name, config in changes.items()
        ]
    )
    failed = [
        resource[3] for response in responses for resource in response.resources if resource[0] != 0
    ]
    for name in failed:
        log.warning("topic %s: its erasure configs could not be altered", name)
    return sorted(set(changes) - set(failed))


def parse_settings(argv: Sequence[str] | None = None) -> tuple[str, TopicSettings]:
    parser = argparse.ArgumentParser(
        description="Create Fedelta's Kafka topics; report existing ones weaker than asked "
        f"(exit status {WEAKER_EXIT_STATUS})."
    )
    parser.add_argument("--bootstrap-servers", required=True)
    flags = {
        "partitions": "--partitions",
        "replication_factor": "--replication-factor",
        "min_insync_replicas": "--min-insync-replicas",
        "retention_ms": "--retention-ms",
        "max_compaction_lag_ms": "--max-compaction-lag-ms",
    }
    for name, flag in flags.items():
        parser.add_argument(flag, dest=name, type=int, help=f"default: ${ENV_VARIABLES[name]}")
    args = parser.parse_args(argv)
    try:
        from_env = TopicSettings.from_env()
        chosen = {name: getattr(args, name) for name in flags if getattr(args, name) is not None}
        settings = TopicSettings(**{name: getattr(from_env, name) for name in flags} | chosen)
    except ValueError as error:
        parser.error(str(error))
    return args.bootstrap_servers, settings


def main(argv: Sequence[str] | None = None) -> int:
    bootstrap_servers, settings = parse_settings(argv)
    # The admin principal from KAFKA_USERNAME / KAFKA_PASSWORD (and KAFKA_SECURITY_PROTOCOL),
    # never from arguments (which `ps` shows); none given: PLAINTEXT.
    connection = KafkaConnection.from_env(
        {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers}
    )
    result = asyncio.run(ensure_topic_layout(connection, settings))
    print(
        f"topics: {len(result.created)} created, "
        f"{len(ALL_TOPICS) - len(result.created)} already there "
        f"(replication factor {settings.replication_factor}, "
        f"min.insync.replicas {settings.min_insync_replicas})"
    )
    for name in result.altered:
        print(f"topics: {name}: erasure configs tightened to {settings.max_compaction_lag_ms} ms")
    for name, found in sorted(result.weaker.items()):
        print(f"topics: {name} is weaker than asked: {'; '.join(found)}", file=sys.stderr)
    return WEAKER_EXIT_STATUS if result.weaker else 0


if __name__ == "__main__":
    sys.exit(main())
