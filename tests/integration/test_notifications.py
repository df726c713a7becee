"""Notifications on the real stack: events in from Kafka, mail out to the SMTP catcher,
outcomes back on Kafka, the delivery log over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.notifications.adapters.repository import SqlNotificationRepository
from services.notifications.adapters.tables import contacts
from services.notifications.api.app import create_app
from services.notifications.domain.model import Channel, schedule
from services.notifications.settings import NotificationsSettings
from shared import events, topics
from shared.events import CloudEvent, derived_event_id, new_event
from tests.support.kafka import events_for, publish
from tests.support.polling import eventually
from tests.support.services import READER, running, settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(stack: Stack) -> NotificationsSettings:
    stack.migrate("notifications")
    return settings_for(
        NotificationsSettings, stack, "notifications", dispatch_interval_seconds="0.05"
    )


@pytest_asyncio.fixture(scope="module")
async def client(settings: NotificationsSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app, settings) as (_, client):
        yield client


@pytest_asyncio.fixture(scope="module")
async def database(stack: Stack) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(stack.database_url("notifications"))
    yield engine
    await engine.dispose()


def new_customer() -> tuple[str, str]:
    token = uuid.uuid4().hex
    return f"cust-{token}", f"{token}@example.com"


def enrolment(
    customer_id: str, email: str | None, *, consent_email: bool, locale: str = "en"
) -> CloudEvent:
    now = datetime.now(UTC)
    return new_event(
        events.CustomerEnrolled(
            customer_id=customer_id,
            partner_id="demo",
            enrolled_at=now,
            locale=locale,
            email=email,
            consent=events.Consent(email=consent_email),
        ),
        source="ingest/demo",
        subject=customer_id,
        time=now,
    )


def tier_up(customer_id: str, to_tier: events.TierName) -> CloudEvent:
    now = datetime.now(UTC)
    return new_event(
        events.TierChanged(
            customer_id=customer_id,
            from_tier="bronze",
            to_tier=to_tier,
            direction="up",
            reason="qualifying spend",
            effective_at=now,
            review_at=now + timedelta(days=365),
        ),
        source="tiers",
        subject=customer_id,
        time=now,
    )


async def send(stack: Stack, topic: str, event: CloudEvent) -> None:
    await publish(stack.kafka_bootstrap_servers, topic, event.subject, event)


def mails_to(stack: Stack, address: str) -> list[EmailMessage]:
    found = []
    for path in sorted(stack.mail_dir.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        if message["To"] == address:
            found.append(message)
    return found


async def delivery_log(client: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/customers/{customer_id}/notifications", headers=READER)
    if response.status_code == 404:
        return []
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def settled_log(
    client: httpx.AsyncClient, customer_id: str, count: int, what: str
) -> list[dict[str, Any]]:
    """The log once `count` messages exist and none of them is still scheduled."""

    async def probe() -> list[dict[str, Any]] | None:
        items = await delivery_log(client, customer_id)
        if len(items) >= count and all(item["status"] != "scheduled" for item in items):
            return items
        return None

    return await eventually(probe, within=60, what=what)


async def test_enrolment_with_consent_sends_one_welcome(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    customer_id, email = new_customer()
    cause = enrolment(customer_id, email, consent_email=True, locale="it-IT")
    await send(stack, topics.CUSTOMERS, cause)

    (item,) = await settled_log(client, customer_id, 1, "the welcome to be sent")
    notification_id = derived_event_id(cause.id, "welcome/email")
    assert item["notification_id"] == notification_id
    assert (item["channel"], item["template"], item["status"], item["attempts"]) == (
        "email",
        "welcome",
        "sent",
        1,
    )
    assert item["sent_at"] is not None

    (mail,) = await eventually(lambda: _some(mails_to(stack, email)), what="the .eml file")
    assert mail["Subject"] == "Benvenuto in Fedelta"
    assert mail["Message-ID"] == f"<{notification_id}@fedelta.localhost>"
    assert mail["From"] == "Fedelta <no-reply@fedelta.localhost>"
    assert "programma fedeltà" in mail.get_content()


async def test_enrolment_without_consent_is_suppressed_and_sends_nothing(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    customer_id, email = new_customer()
    await send(stack, topics.CUSTOMERS, enrolment(customer_id, email, consent_email=False))

    (item,) = await settled_log(client, customer_id, 1, "the welcome to be decided")
    assert (item["template"], item["status"], item["attempts"], item["sent_at"]) == (
        "welcome",
        "suppressed",
        0,
        None,
    )
    assert mails_to(stack, email) == []


async def test_tier_up_mails_the_new_tier(stack: Stack, client: httpx.AsyncClient) -> None:
    customer_id, email = new_customer()
    await send(stack, topics.CUSTOMERS, enrolment(customer_id, email, consent_email=True))
    await settled_log(client, customer_id, 1, "the welcome to be sent")

    await send(stack, topics.TIERS, tier_up(customer_id, "gold"))

    items = await settled_log(client, customer_id, 2, "the tier_up mail to be sent")
    assert [(i["template"], i["status"]) for i in items] == [
        ("tier_up", "sent"),
        ("welcome", "sent"),
    ]
    mails = await eventually(
        lambda: _some([m for m in mails_to(stack, email) if "Gold" in m["Subject"]]),
        what="the tier_up .eml file",
    )
    assert len(mails) == 1
    assert "Gold" in mails[0].get_content()


async def test_the_same_enrolment_twice_sends_one_welcome(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, email = new_customer()
    cause = enrolment(customer_id, email, consent_email=True)
    await send(stack, topics.CUSTOMERS, cause)
    await send(stack, topics.CUSTOMERS, cause)
    # An update behind both on the same partition: once it is applied, so is the duplicate.
    changed = f"changed-{email}"
    await send(
        stack,
        topics.CUSTOMERS,
        new_event(
            events.CustomerUpdated(
                customer_id=customer_id,
                partner_id="demo",
                enrolled_at=cause.time,
                email=changed,
                consent=events.Consent(email=True),
            ),
            source="ingest/demo",
            subject=customer_id,
            time=datetime.now(UTC),
        ),
    )

    async def contact_email() -> str | None:
        async with database.connect() as conn:
            found: str | None = await conn.scalar(
                sa.select(contacts.c.email).where(contacts.c.customer_id == customer_id)
            )
        return found if found == changed else None

    await eventually(contact_email, within=60, what="the update behind the duplicate")
    items = await settled_log(client, customer_id, 1, "the welcome to be settled")
    assert [(i["template"], i["status"]) for i in items] == [("welcome", "sent")]
    assert len(mails_to(stack, email) + mails_to(stack, changed)) == 1


async def test_a_sent_message_is_announced_on_the_notifications_topic(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    customer_id, email = new_customer()
    cause = enrolment(customer_id, email, consent_email=True)
    await send(stack, topics.CUSTOMERS, cause)

    async def delivered() -> list[CloudEvent] | None:
        found = await events_for(stack.kafka_bootstrap_servers, topics.NOTIFICATIONS, customer_id)
        return found or None

    (event,) = await eventually(delivered, within=60, what="notification.delivered on Kafka")
    assert event.type == events.NOTIFICATION_DELIVERED
    assert events.NotificationDelivered.model_validate(event.data) == events.NotificationDelivered(
        notification_id=derived_event_id(cause.id, "welcome/email"),
        customer_id=customer_id,
        channel="email",
        template="welcome",
        attempt=1,
    )
    assert email not in event.to_bytes().decode()  # ids only on this topic


async def test_erasure_deletes_the_contact(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, email = new_customer()
    await send(stack, topics.CUSTOMERS, enrolment(customer_id, email, consent_email=True))
    await settled_log(client, customer_id, 1, "the welcome to be sent")

    await send(
        stack,
        topics.CUSTOMERS,
        new_event(
            events.CustomerErased(customer_id=customer_id),
            source="ingest/demo",
            subject=customer_id,
            time=datetime.now(UTC),
        ),
    )

    async def contact_gone() -> bool:
        async with database.connect() as conn:
            count = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(contacts)
                .where(contacts.c.customer_id == customer_id)
            )
        return count == 0

    await eventually(contact_gone, within=60, what="the contact to be deleted")
    # The log keeps ids and outcomes only, so it outlives the erasure.
    assert [i["status"] for i in await delivery_log(client, customer_id)] == ["sent"]


async def test_the_delivery_log_needs_a_token_and_a_known_customer(
    client: httpx.AsyncClient,
) -> None:
    unknown = await client.get("/v1/customers/nobody-here/notifications", headers=READER)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    anonymous = await client.get("/v1/customers/nobody-here/notifications")
    assert anonymous.status_code == 401


async def test_one_cause_never_yields_the_same_message_twice(database: AsyncEngine) -> None:
    customer_id, _ = new_customer()
    cause_id = str(uuid.uuid4())
    first, second = (
        schedule(
            notification_id=str(uuid.uuid4()),
            customer_id=customer_id,
            channel=Channel.EMAIL,
            template="welcome",
            cause_event_id=cause_id,
            now=datetime.now(UTC),
        )
        for _ in range(2)
    )
    async with database.begin() as conn:
        repository = SqlNotificationRepository(conn)
        assert await repository.schedule(first) is True
        assert await repository.schedule(second) is False  # other id, same cause and template
        assert len(await repository.deliveries_for(customer_id, 10)) == 1
        await conn.rollback()


async def test_a_claimed_message_is_skipped_by_another_dispatcher(database: AsyncEngine) -> None:
    customer_id, _ = new_customer()
    # Due only in a far future, so the service's own running dispatcher leaves it alone.
    future = datetime.now(UTC) + timedelta(days=365 * 50)
    delivery = schedule(
        notification_id=str(uuid.uuid4()),
        customer_id=customer_id,
        channel=Channel.EMAIL,
        template="welcome",
        cause_event_id=str(uuid.uuid4()),
        now=future,
    )
    async with database.begin() as conn:
        await SqlNotificationRepository(conn).schedule(delivery)
    try:
        async with database.begin() as first, database.begin() as second:
            claimed = await SqlNotificationRepository(first).claim_due(future, 1000)
            assert delivery.notification_id in {d.notification_id for d in claimed}
            also_claimed = await SqlNotificationRepository(second).claim_due(future, 1000)
            assert delivery.notification_id not in {d.notification_id for d in also_claimed}
    finally:
        async with database.begin() as conn:
            await conn.execute(
                sa.text("DELETE FROM deliveries WHERE notification_id = :id"),
                {"id": delivery.notification_id},
            )


async def _some(items: list[EmailMessage]) -> list[EmailMessage] | None:
    return items or None
