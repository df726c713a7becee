"""Every consumer of the customers topic acts correctly on what compaction leaves of it.

`fedelta.customers.v1` is compacted with no compaction lag: once a segment rolls, the broker
keeps only a customer's newest record, so a new consumer group, a replay, or a consumer that
lags past a segment roll may never see `customer.enrolled`, only the latest `customer.updated`.

The broker really compacts here: the customer's records go to a scratch topic configured to
roll and clean at once, and the test polls (with a deadline) until the cleaner has removed the
enrolment. What survives is then what points, tiers and notifications are given on the real
customers topic: exactly the records a fresh consumer group would replay. (The services' own
consumer group names are fixed, so a truly fresh group would replay every other test's
customers too; feeding them the compacted records is the same input, without that cost.)
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.notifications.api.app import create_app as create_notifications
from services.notifications.domain.model import Channel
from services.notifications.handlers import welcome_id
from services.points.api.app import create_app as create_points
from services.points.settings import PointsSettings
from services.tiers.api.app import create_app as create_tiers
from services.tiers.settings import TiersSettings
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from shared.messaging.kafka import KafkaConnection, client_options
from tests.support.factories import enrolment, erasure, profile_update, purchase
from tests.support.notifications import delivering_settings, mails_to, send, tier_up
from tests.support.polling import eventually
from tests.support.services import READER, running, settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

# The log cleaner wakes every log.cleaner.backoff.ms (15 s by default) when it found nothing to
# do; a loaded CI machine needs a few of its rounds.
COMPACTION_DEADLINE_S = 180.0


class Services:
    def __init__(
        self, points: httpx.AsyncClient, tiers: httpx.AsyncClient, notes: httpx.AsyncClient
    ) -> None:
        self.points = points
        self.tiers = tiers
        self.notifications = notes


@pytest.fixture(scope="module")
async def services(stack: Stack) -> AsyncIterator[Services]:
    for name in ("points", "tiers", "notifications"):
        stack.migrate(name)
    notifications = delivering_settings(stack)
    async with (
        running(create_points, settings_for(PointsSettings, stack, "points")) as (_, points),
        running(create_tiers, settings_for(TiersSettings, stack, "tiers")) as (_, tiers),
        running(create_notifications, notifications) as (_, notes),
    ):
        yield Services(points, tiers, notes)


def profile_event(
    kind: type[events.CustomerProfile],
    customer_id: str,
    enrolled_at: datetime,
    email: str,
    version: int,
) -> CloudEvent:
    """The enrolment or a profile update, now, with email consent."""
    build = enrolment if kind is events.CustomerEnrolled else profile_update
    return build(
        customer_id,
        enrolled_at=enrolled_at,
        email=email,
        consent=events.Consent(email=True),
        version=version,
    )


async def compacted_by_the_broker(
    bootstrap: str | KafkaConnection, records: list[CloudEvent]
) -> list[CloudEvent]:
    """What the broker's log cleaner leaves of `records` (keyed by subject), in log order.

    A scratch topic rolls a segment every 100 ms and is dirty enough to clean at once; the
    cleaner compacts only rolled segments, so a filler record is appended on every poll to
    roll the one holding the customer's records."""
    scratch = f"fedelta.test.compaction.{uuid.uuid4().hex}"
    admin = AIOKafkaAdminClient(**client_options(bootstrap))
    await admin.start()
    producer = AIOKafkaProducer(**client_options(bootstrap), acks="all")
    await producer.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    name=scratch,
                    num_partitions=1,
                    replication_factor=1,
                    topic_configs={
                        "cleanup.policy": "compact",
                        "min.compaction.lag.ms": "0",
                        "segment.ms": "100",
                        "min.cleanable.dirty.ratio": "0.01",
                    },
                )
            ]
        )
        for event in records:
            await producer.send_and_wait(scratch, event.to_bytes(), key=event.subject.encode())
        ids = {event.id for event in records}
        survivors_by_key = {event.subject: event.id for event in records}
        expected = set(survivors_by_key.values())
        deadline = time.monotonic() + COMPACTION_DEADLINE_S
        while True:
            await producer.send_and_wait(scratch, b"roll", key=b"segment-roll")
            left = [e for e in await _read_events(bootstrap, scratch) if e.id in ids]
            if {e.id for e in left} == expected:
                return left
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the broker did not compact {scratch} within {COMPACTION_DEADLINE_S}s: "
                    f"{len(left)} of the customers' records left, {len(expected)} expected"
                )
            await asyncio.sleep(1.0)  # between cleaner rounds; the deadline bounds the wait
    finally:
        await producer.stop()
        try:
            await admin.delete_topics([scratch])
        finally:
            await admin.close()


async def _read_events(bootstrap: str | KafkaConnection, topic: str) -> list[CloudEvent]:
    consumer = AIOKafkaConsumer(**client_options(bootstrap), enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        found: list[CloudEvent] = []
        deadline = time.monotonic() + 30
        while await consumer.position(partition) < end:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end within 30s")
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                found.extend(
                    CloudEvent.from_bytes(r.value) for r in batch if r.value and r.value != b"roll"
                )
        return found
    finally:
        await consumer.stop()


async def _json(client: httpx.AsyncClient, path: str) -> dict[str, Any] | None:
    response = await client.get(path, headers=READER)
    if response.status_code != 200:
        return None
    body: dict[str, Any] = response.json()
    return body


async def _sent(
    client: httpx.AsyncClient, customer_id: str, template: str
) -> list[dict[str, Any]] | None:
    """The customer's messages of `template`, once there is one and none is still waiting."""
    body = await _json(client, f"/v1/customers/{customer_id}/notifications")
    if body is None:
        return None
    found = [i for i in body["items"] if i["template"] == template]
    return found if found and all(i["status"] == "sent" for i in found) else None


async def _ledger(client: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]]:
    body = await _json(client, f"/v1/customers/{customer_id}/ledger?limit=100")
    assert body is not None
    entries: list[dict[str, Any]] = body["entries"]
    return entries


async def test_the_latest_profile_alone_enrols_in_every_service(
    stack: Stack, services: Services
) -> None:
    customer = f"c-{uuid.uuid4()}"
    enrolled_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    old_email = f"old-{uuid.uuid4().hex}@example.com"
    new_email = f"new-{uuid.uuid4().hex}@example.com"
    enrolled = profile_event(events.CustomerEnrolled, customer, enrolled_at, old_email, 1)
    update = profile_event(events.CustomerUpdated, customer, enrolled_at, new_email, 2)

    left = await compacted_by_the_broker(stack.kafka, [enrolled, update])
    assert [(e.type, e.id) for e in left] == [(events.CUSTOMER_UPDATED, update.id)]

    for event in left:
        await send(stack, topics.CUSTOMERS, event)
    await send(stack, topics.PURCHASES, purchase(customer, "100.00"))

    # Points: the welcome bonus once, then the purchase; never a 404 balance.
    async def balance() -> dict[str, Any] | None:
        body = await _json(services.points, f"/v1/customers/{customer}/balance")
        return body if body is not None and body["available"] == 200 else None

    body = await eventually(balance, within=60, what="welcome bonus + purchase = 200 points")
    assert body["lifetime_earned"] == 200
    assert sorted(e["points"] for e in await _ledger(services.points, customer)) == [100, 100]

    # Tiers: enrolled at the profile's enrolled_at, with the purchase's qualifying spend.
    async def tier() -> dict[str, Any] | None:
        body = await _json(services.tiers, f"/v1/customers/{customer}/tier")
        return body if body is not None and Decimal(body["qualifying_spend"]) == 100 else None

    body = await eventually(tier, within=60, what="the tier with the purchase's spend")
    assert body["tier"] == "bronze"
    assert datetime.fromisoformat(body["since"]) == enrolled_at
    assert datetime.fromisoformat(body["review_at"]) == enrolled_at + timedelta(days=365)

    # Notifications: enrolled three days before the update, so welcomed (once, with the
    # customer's own welcome id), at the contact and consent of the latest profile.
    (welcome,) = await eventually(
        lambda: _sent(services.notifications, customer, "welcome"),
        within=60,
        what="the welcome of a customer known only from their latest profile",
    )
    assert welcome["notification_id"] == welcome_id(customer, Channel.EMAIL)
    assert welcome["channel"] == "email"

    await send(stack, topics.TIERS, tier_up(customer, "silver"))
    await eventually(
        lambda: _sent(services.notifications, customer, "tier_up"), within=60, what="tier_up"
    )

    async def mail() -> list[EmailMessage] | None:
        found = mails_to(stack, new_email)
        return found if len(found) >= 2 else None

    mails = await eventually(mail, within=60, what="welcome + tier_up to the latest address")
    assert len(mails) == 2
    assert mails_to(stack, old_email) == []
    log = await _json(services.notifications, f"/v1/customers/{customer}/notifications")
    assert log is not None
    assert [i["template"] for i in log["items"]].count("welcome") == 1


async def test_a_long_standing_customer_known_only_from_an_update_is_not_welcomed(
    stack: Stack, services: Services
) -> None:
    """A replay of old history: the latest profile of a customer enrolled long before it."""
    customer = f"c-{uuid.uuid4()}"
    enrolled_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
    email = f"{uuid.uuid4().hex}@example.com"
    await send(
        stack,
        topics.CUSTOMERS,
        profile_event(events.CustomerUpdated, customer, enrolled_at, email, 5),
    )
    # The tier_up goes out only once the contact is stored, in the transaction that decided
    # on the welcome: when it is sent, a welcome would already be in the log.
    await send(stack, topics.TIERS, tier_up(customer, "silver"))
    await eventually(
        lambda: _sent(services.notifications, customer, "tier_up"), within=60, what="tier_up"
    )
    body = await _json(services.notifications, f"/v1/customers/{customer}/notifications")
    assert body is not None
    templates = [i["template"] for i in body["items"]]
    # Points did enrol them from the profile (its welcome bonus waits in a points digest).
    assert "tier_up" in templates
    assert "welcome" not in templates


async def test_an_enrolment_then_an_update_welcomes_once(stack: Stack, services: Services) -> None:
    customer = f"c-{uuid.uuid4()}"
    enrolled_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    email = f"{uuid.uuid4().hex}@example.com"
    for kind, version in ((events.CustomerEnrolled, 1), (events.CustomerUpdated, 2)):
        event = profile_event(kind, customer, enrolled_at, email, version)
        await send(stack, topics.CUSTOMERS, event)
    marker = purchase(customer, "7.00")
    await send(stack, topics.PURCHASES, marker)

    async def balance() -> dict[str, Any] | None:
        body = await _json(services.points, f"/v1/customers/{customer}/balance")
        return body if body is not None and body["available"] >= 107 else None

    body = await eventually(balance, within=60, what="welcome bonus and the marker purchase")
    assert (body["available"], body["lifetime_earned"]) == (107, 107)
    assert sorted(e["points"] for e in await _ledger(services.points, customer)) == [7, 100]

    async def welcomes() -> list[dict[str, Any]] | None:
        body = await _json(services.notifications, f"/v1/customers/{customer}/notifications")
        if body is None:
            return None
        found = [i for i in body["items"] if i["template"] == "welcome"]
        return found if found and all(i["status"] != "scheduled" for i in found) else None

    found = await eventually(welcomes, within=60, what="the welcome to be sent")
    assert [(i["template"], i["status"]) for i in found] == [("welcome", "sent")]
    assert len(mails_to(stack, email)) == 1

    tier = await eventually(
        lambda: _json(services.tiers, f"/v1/customers/{customer}/tier"), within=60, what="tier"
    )
    assert datetime.fromisoformat(tier["since"]) == enrolled_at


async def test_compaction_leaves_no_personal_data_of_an_erased_customer(stack: Stack) -> None:
    """What ingest writes for an erased customer (profiles, then `customer.erased`, whose
    tombstone test_erasure.py checks) keeps, once compacted, nothing but the erasure: no
    email, phone or profile of theirs stays on the customers topic."""
    customer = f"c-{uuid.uuid4()}"
    enrolled_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    emails = [f"{name}-{uuid.uuid4().hex}@example.com" for name in ("first", "second")]
    erased = erasure(customer)
    records = [
        profile_event(events.CustomerEnrolled, customer, enrolled_at, emails[0], 1),
        profile_event(events.CustomerUpdated, customer, enrolled_at, emails[1], 2),
        erased,
    ]

    left = await compacted_by_the_broker(stack.kafka, records)

    assert [(e.type, e.id) for e in left] == [(events.CUSTOMER_ERASED, erased.id)]
    assert not any(email in e.model_dump_json() for e in left for email in emails)
