"""The broker trusts no one (issue 19): every client authenticates with a principal of its own,
each service's principal writes only its own topics (shared.messaging.acls), and a consumer
refuses an event whose source is not the producer that owns its topic.

The broker checks need a stack whose broker requires SASL (deploy/local/kafka.sh since issue
19); on a stack started before it they are skipped. The provenance check runs on any stack."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from prometheus_client import REGISTRY

from services.points.api.app import create_app
from services.points.settings import PointsSettings
from shared.messaging import acls, topics
from shared.messaging.events import source_uri
from shared.messaging.kafka import KafkaConnection
from tests.support import factories
from tests.support.kafka import dead_letters, provision_partners, publish
from tests.support.polling import eventually
from tests.support.services import READER, running, settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def secured(stack: Stack) -> KafkaConnection:
    if not stack.kafka.sasl:
        pytest.fail("this stack's broker was started before it required SASL: restart it")
    return stack.kafka


async def send_as(connection: KafkaConnection, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(**connection.options(), acks="all", request_timeout_ms=10_000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=b"k19")
    finally:
        await producer.stop()


@pytest.mark.parametrize("service", ["points", "tiers", "notifications", "engagement"])
async def test_a_service_principal_cannot_write_the_purchases_topic(
    stack: Stack, service: str
) -> None:
    secured(stack)
    forged = factories.purchase(f"c-{uuid.uuid4()}", "99999.00", at=NOW).to_bytes()
    with pytest.raises(TopicAuthorizationFailedError):
        await send_as(stack.kafka_as(service), topics.PURCHASES, forged)


async def test_ingest_writes_the_purchases_topic_but_not_the_points_topic(stack: Stack) -> None:
    secured(stack)
    ingest = stack.kafka_as("ingest")
    await send_as(ingest, topics.PURCHASES, b"not an event: dead-lettered by each consumer")
    with pytest.raises(TopicAuthorizationFailedError):
        await send_as(ingest, topics.POINTS, b"{}")


async def test_a_service_principal_reads_only_what_it_consumes_in_its_own_group(
    stack: Stack,
) -> None:
    secured(stack)
    tiers = stack.kafka_as("tiers")
    # Its own group, a topic it does not consume.
    with pytest.raises((TopicAuthorizationFailedError, GroupAuthorizationFailedError)):
        await _poll_once(tiers, topics.NOTIFICATIONS, acls.consumer_group("tiers"))
    # A topic it consumes, another service's group.
    with pytest.raises((TopicAuthorizationFailedError, GroupAuthorizationFailedError)):
        await _poll_once(tiers, topics.PURCHASES, acls.consumer_group("points"))


async def _poll_once(connection: KafkaConnection, topic: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        topic, **connection.options(), group_id=group, enable_auto_commit=False
    )
    try:
        await consumer.start()
        async with asyncio.timeout(30):
            while True:  # an authorization error surfaces on a poll, once the group forms
                await consumer.getmany(timeout_ms=500)
    finally:
        await consumer.stop()


async def test_a_client_without_credentials_or_with_a_wrong_password_is_refused(
    stack: Stack,
) -> None:
    secured(stack)
    anonymous = KafkaConnection(stack.kafka_bootstrap_servers)
    wrong = stack.kafka.as_user("points", "not-the-password")
    for connection in (anonymous, wrong):
        producer = AIOKafkaProducer(**connection.options(), request_timeout_ms=5_000)
        with pytest.raises((KafkaConnectionError, KafkaError, asyncio.TimeoutError)):
            async with asyncio.timeout(30):
                await producer.start()
        await producer.stop()


@pytest.fixture
async def points(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    stack.migrate("points")
    async with running(create_app, settings_for(PointsSettings, stack, "points")) as (_, client):
        yield client


async def balance(points: httpx.AsyncClient, customer: str) -> dict[str, Any] | None:
    response = await points.get(f"/v1/customers/{customer}/balance", headers=READER)
    return response.json() if response.status_code == 200 else None


async def test_a_purchase_from_a_foreign_source_is_dead_lettered_counted_and_earns_nothing(
    stack: Stack, points: httpx.AsyncClient
) -> None:
    """A writer the broker let through (here the admin principal, standing in for a stolen
    credential) puts a purchase naming points as its source on the purchases topic: points
    refuses it, dead-letters it with the reason, counts it; the customer's next real purchase
    is applied and the forged one earned nothing."""
    customer = f"c-{uuid.uuid4()}"
    before = _refused()
    await publish(stack.kafka, topics.CUSTOMERS, customer, factories.enrolment(customer, at=NOW))
    genuine = factories.purchase(customer, "5.00", at=NOW)
    # A complete purchase as ingest would write it, but naming points as its producer.
    forged = factories.purchase(customer, "99999.00", at=NOW).model_copy(
        update={"source": source_uri("points")}
    )
    await publish(stack.kafka, topics.PURCHASES, customer, forged)
    await publish(stack.kafka, topics.PURCHASES, customer, genuine)

    # The welcome bonus (100) and the genuine purchase (5): nothing for the forged one.
    found = await eventually(
        lambda: _with_available(points, customer, 105), what="the purchase after the forged one"
    )
    assert found["lifetime_earned"] == 105
    dead = await eventually(
        lambda: _dead(stack, customer), what="the forged purchase on the dead-letter topic"
    )
    assert [dict(r.headers)["fedelta-error"] for r in dead] == [b"UnknownSource"]
    assert forged.id.encode() in dead[0].value
    assert _refused() == before + 1


async def _with_available(
    points: httpx.AsyncClient, customer: str, available: int
) -> dict[str, Any] | None:
    found = await balance(points, customer)
    return found if found is not None and found["available"] == available else None


async def _dead(stack: Stack, customer: str) -> list[Any] | None:
    found = await dead_letters(stack.kafka, topics.PURCHASES, key=customer, consumer="points")
    return found or None


def _refused() -> float:
    labels = {"consumer": "points", "topic": topics.PURCHASES, "reason": "UnknownSource"}
    return REGISTRY.get_sample_value("fedelta_events_refused_total", labels) or 0.0


async def test_applying_the_table_adds_nothing_on_a_started_broker_and_removes_stale_grants(
    stack: Stack,
) -> None:
    """What kafka.sh, the compose topics job and the Kubernetes ACLs job run: the broker holds
    the table after a start; a grant of one of our principals that is not in the table (points
    writing purchases) is removed, and points is refused again."""
    secured(stack)
    stale = acls.Acl("User:points", "TOPIC", topics.PURCHASES, "WRITE")
    assert stale not in acls.acls()
    admin = AIOKafkaAdminClient(**stack.kafka.options())
    await admin.start()
    try:
        await acls._request(admin, "CreateAcls", stale)
        # The broker serves ACLs from its metadata, a moment behind the controller.
        await eventually(lambda: _holds(admin, stale, True), what="the stale grant on the broker")
        applied = await acls.apply(stack.kafka)
        assert applied.created == []
        assert applied.removed == [stale]
        await eventually(lambda: _holds(admin, stale, False), what="the stale grant gone")
    finally:
        await admin.close()
    forged = factories.purchase(f"c-{uuid.uuid4()}", "1.00", at=NOW).to_bytes()
    with pytest.raises(TopicAuthorizationFailedError):
        await send_as(stack.kafka_as("points"), topics.PURCHASES, forged)


async def _holds(admin: AIOKafkaAdminClient, acl: acls.Acl, wanted: bool) -> bool | None:
    return True if (acl in await acls._describe(admin)) == wanted else None


@pytest.fixture
async def points_waiting_briefly(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """Points waiting 3 s (not 30) for a partner it does not know yet."""
    stack.migrate("points")
    settings = settings_for(
        PointsSettings, stack, "points", consumer_unknown_partner_wait_seconds="3"
    )
    async with running(create_app, settings) as (_, client):
        yield client


def _refused_as(reason: str) -> float:
    labels = {"consumer": "points", "topic": topics.PURCHASES, "reason": reason}
    return REGISTRY.get_sample_value("fedelta_events_refused_total", labels) or 0.0


async def test_a_purchase_of_a_partner_nobody_provisioned_is_dead_lettered_and_earns_nothing(
    stack: Stack, points_waiting_briefly: httpx.AsyncClient
) -> None:
    """A purchase ingest could never have accepted (its partner was never provisioned, so
    never announced on the partners topic) is refused once points has read the partners topic
    on for its wait: dead-lettered as UnknownPartner, counted; the member's next purchase of a
    known partner is applied."""
    customer = f"c-{uuid.uuid4()}"
    before = _refused_as("UnknownPartner")
    await publish(stack.kafka, topics.CUSTOMERS, customer, factories.enrolment(customer, at=NOW))
    rogue = factories.purchase(customer, "99999.00", at=NOW, partner_id=f"rogue-{uuid.uuid4()}")
    # Raw bytes: the test helper would announce the partner of an event first.
    await publish(stack.kafka, topics.PURCHASES, customer, rogue.to_bytes())
    await publish(stack.kafka, topics.PURCHASES, customer, factories.purchase(customer, "5.00"))

    found = await eventually(
        lambda: _with_available(points_waiting_briefly, customer, 105),
        what="the purchase after the rogue one",
    )
    assert found["lifetime_earned"] == 105
    dead = await eventually(
        lambda: _dead(stack, customer), what="the rogue purchase on the dead-letter topic"
    )
    assert [dict(r.headers)["fedelta-error"] for r in dead] == [b"UnknownPartner"]
    assert rogue.id.encode() in dead[0].value
    assert _refused_as("UnknownPartner") == before + 1


async def test_a_purchase_read_before_its_partners_record_waits_for_it_and_is_applied(
    stack: Stack, points_waiting_briefly: httpx.AsyncClient
) -> None:
    """The partner's record and its first purchase travel on two topics with no order between
    them: a purchase read first waits (here up to 3 s) for the partner's record."""
    customer, partner = f"c-{uuid.uuid4()}", f"late-{uuid.uuid4()}"
    await publish(stack.kafka, topics.CUSTOMERS, customer, factories.enrolment(customer, at=NOW))
    await eventually(
        lambda: _with_available(points_waiting_briefly, customer, 100), what="the welcome"
    )
    purchase = factories.purchase(customer, "7.00", at=NOW, partner_id=partner)
    await publish(stack.kafka, topics.PURCHASES, customer, purchase.to_bytes())
    await asyncio.sleep(0.5)  # the consumer reads the purchase and starts waiting
    await provision_partners(stack.kafka, [partner])

    found = await eventually(
        lambda: _with_available(points_waiting_briefly, customer, 107), what="the late purchase"
    )
    assert found["lifetime_earned"] == 107
    assert await _dead(stack, customer) is None
