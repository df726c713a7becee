"""Who may do what on the broker: one principal per service, each allowed to write only the
topics it produces and read only what it consumes, with its own consumer group.

This table is the single source of the broker's ACLs: `python -m shared.messaging.acls apply`
makes a broker's ACLs of our principals the table's (the local broker's script
deploy/local/kafka.sh, the compose topics job and the Kubernetes topics job run it), and
`python -m shared.messaging.acls` prints it (`<principal> <resource type> <name> <operation>`).
tests/unit/shared/test_acls.py holds it against what each service really produces and consumes;
tests/integration/core/test_kafka_security.py against what the broker refuses.

The broker runs with `allow.everyone.if.no.acl.found=false`: what is not here is refused. The
`admin` principal is a super user (topic creation, the fedelta command's Kafka commands, tests,
bench and chaos) and needs no line.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.messaging.connection import KafkaConnection, client_options
from shared.messaging.topics import (
    CUSTOMERS,
    ENGAGEMENT,
    FEEDBACK,
    NOTIFICATIONS,
    PARTNERS,
    POINTS,
    PURCHASES,
    SEGMENTS,
    TIERS,
    checks_partners,
    dead_letter_topic,
)

# The super user: topic and ACL administration, never a service.
ADMIN = "admin"
SERVICES = ("ingest", "points", "tiers", "notifications", "engagement", "insights", "web")


def consumer_group(service: str) -> str:
    """The consumer group of a service's EventConsumer (shared.messaging.consumer)."""
    return f"fedelta-{service}"


@dataclass(frozen=True)
class Grant:
    """What one service's principal may do."""

    # Topics it writes: its own, the dead-letter topics of what it consumes (its consumer
    # dead-letters there), and what its outbox writes besides.
    writes: tuple[str, ...]
    reads: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


def _consumer(service: str, own: str, consumes: tuple[str, ...]) -> Grant:
    """A consumer reads its topics in its group, and the partners topic (without a group:
    shared.messaging.partners) when it consumes events that name a partner."""
    return Grant(
        writes=(own, *(dead_letter_topic(topic) for topic in consumes)),
        reads=(*consumes, *((PARTNERS,) if checks_partners(consumes) else ())),
        groups=(consumer_group(service),),
    )


GRANTS: dict[str, Grant] = {
    # Ingest publishes profiles, purchases and the partners it provisions; an erasure's
    # tombstone also goes to the customers dead-letter topic
    # (services/ingest/usecases/customers.erasure_tombstones), and the tombstones of an erased
    # member's feedback to the feedback dead-letter topic.
    "ingest": Grant(
        writes=(
            CUSTOMERS,
            PURCHASES,
            FEEDBACK,
            PARTNERS,
            dead_letter_topic(CUSTOMERS),
            dead_letter_topic(FEEDBACK),
        )
    ),
    "points": _consumer("points", POINTS, (CUSTOMERS, PURCHASES, TIERS, ENGAGEMENT, SEGMENTS)),
    # Tiers' replay reads customers and purchases without a group (services/tiers/adapters).
    "tiers": _consumer("tiers", TIERS, (CUSTOMERS, PURCHASES)),
    "notifications": _consumer(
        "notifications", NOTIFICATIONS, (CUSTOMERS, TIERS, POINTS, PURCHASES, ENGAGEMENT)
    ),
    "engagement": _consumer(
        "engagement", ENGAGEMENT, (CUSTOMERS, PURCHASES, TIERS, FEEDBACK, SEGMENTS)
    ),
    # Insights reads every topic whose events say what members do (issue 21); the messages'
    # outcomes tell it nothing yet, so it does not read the notifications topic.
    "insights": _consumer(
        "insights", SEGMENTS, (CUSTOMERS, PURCHASES, POINTS, TIERS, ENGAGEMENT, FEEDBACK)
    ),
    # The web (issue 22) calls the services' HTTP APIs and publishes nothing: its principal
    # (the runtime's idle relay) may write no topic and read none.
    "web": Grant(writes=()),
}


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW entry, from any host, on a literal resource name."""

    principal: str
    resource_type: str  # TOPIC, GROUP or CLUSTER
    resource_name: str
    operation: str  # WRITE, READ, IDEMPOTENT_WRITE

    def line(self) -> str:
        return f"{self.principal} {self.resource_type} {self.resource_name} {self.operation}"


CLUSTER = "kafka-cluster"


def principal(service: str) -> str:
    return f"User:{service}"


def acls(grants: dict[str, Grant] | None = None) -> list[Acl]:
    """Every ACL the broker holds, sorted. A WRITE or READ implies DESCRIBE; every producer of
    ours is idempotent (enable_idempotence), hence IDEMPOTENT_WRITE on the cluster."""
    found: set[Acl] = set()
    for service, grant in (grants or GRANTS).items():
        who = principal(service)
        found.add(Acl(who, "CLUSTER", CLUSTER, "IDEMPOTENT_WRITE"))
        found.update(Acl(who, "TOPIC", topic, "WRITE") for topic in grant.writes)
        found.update(Acl(who, "TOPIC", topic, "READ") for topic in grant.reads)
        found.update(Acl(who, "GROUP", group, "READ") for group in grant.groups)
    return sorted(found)


def writers(topic: str) -> list[str]:
    """The services allowed to write a topic."""
    return [service for service, grant in GRANTS.items() if topic in grant.writes]


def owner(topic: str) -> str | None:
    """The one service that produces a main topic's events (None for a topic nobody or more
    than one service writes, such as a dead-letter topic)."""
    found = writers(topic)
    return found[0] if len(found) == 1 else None


# The Kafka protocol's codes (org.apache.kafka.common.{resource,acl}), for the ACL requests.
_RESOURCE_TYPES = {"TOPIC": 2, "GROUP": 3, "CLUSTER": 4}
_OPERATIONS = {"READ": 3, "WRITE": 4, "DESCRIBE": 8, "IDEMPOTENT_WRITE": 12}
_ANY, _LITERAL, _ALLOW = 1, 3, 3


@dataclass(frozen=True)
class Applied:
    created: list[Acl]
    removed: list[Acl]


async def apply(connection: str | KafkaConnection) -> Applied:
    """Makes the broker's ACLs of our service principals the table's: creates the missing
    entries and deletes our principals' entries that are not in it (other principals' ACLs,
    say another application's on a shared cluster, are left alone). As a super user."""
    from aiokafka.admin import AIOKafkaAdminClient

    wanted = set(acls())
    ours = {principal(service) for service in GRANTS}
    admin = AIOKafkaAdminClient(**client_options(connection))
    await admin.start()
    try:
        existing = {acl for acl in await _describe(admin) if acl.principal in ours}
        created = sorted(wanted - existing)
        removed = sorted(existing - wanted)
        for acl in created:
            await _request(admin, "CreateAcls", acl)
        for acl in removed:
            await _request(admin, "DeleteAcls", acl)
        return Applied(created=created, removed=removed)
    finally:
        await admin.close()


async def _describe(admin: Any) -> list[Acl]:
    """Every literal ALLOW entry from any host the broker holds."""
    from aiokafka.protocol.admin import DescribeAclsRequest

    response = await admin._send_request(
        DescribeAclsRequest(_ANY, None, _ANY, None, None, _ANY, _ANY)
    )
    if response.error_code != 0:
        raise AclsNotApplied(f"DescribeAcls: error {response.error_code}")
    types = {code: name for name, code in _RESOURCE_TYPES.items()}
    operations = {code: name for name, code in _OPERATIONS.items()}
    return [
        Acl(who, types[kind], name, operations[operation])
        for kind, name, pattern, entries in response.resources
        for who, host, operation, permission in entries
        if kind in types
        and operation in operations
        and (pattern, host, permission) == (_LITERAL, "*", _ALLOW)
    ]


async def _request(admin: Any, api: str, acl: Acl) -> None:
    from aiokafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest

    kind = CreateAclsRequest if api == "CreateAcls" else DeleteAclsRequest
    response = await admin._send_request(
        kind(
            _RESOURCE_TYPES[acl.resource_type],
            acl.resource_name,
            _LITERAL,
            acl.principal,
            "*",
            _OPERATIONS[acl.operation],
            _ALLOW,
        )
    )
    results = getattr(response, "creation_responses", None) or response.filter_responses
    errors = [result[0] for result in results if result[0] != 0]
    if errors:
        raise AclsNotApplied(f"{api} {acl.line()}: error {errors[0]}")


class AclsNotApplied(RuntimeError):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    """`lines`: the table, one ACL a line. `apply --bootstrap-servers H:P`: make the broker's
    ACLs the table's, as the principal of KAFKA_USERNAME / KAFKA_PASSWORD (the environment,
    never arguments, which `ps` shows)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in ([], ["lines"]):
        for acl in acls():
            print(acl.line())
        return 0
    if len(args) == 3 and args[0] == "apply" and args[1] == "--bootstrap-servers":
        connection = KafkaConnection.from_env({**os.environ, "KAFKA_BOOTSTRAP_SERVERS": args[2]})
        applied = asyncio.run(apply(connection))
        print(
            f"acls: {len(acls())} in the table, {len(applied.created)} created, "
            f"{len(applied.removed)} stale removed"
        )
        return 0
    print(
        "usage: python -m shared.messaging.acls [lines | apply --bootstrap-servers H:P]",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
