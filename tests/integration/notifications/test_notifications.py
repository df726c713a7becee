"""Notifications on the real stack: events in from Kafka, mail out to the SMTP catcher,
outcomes back on Kafka, the delivery log over HTTP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.adapters import tables
from services.notifications.adapters.repositories.api import SqlApiRepository
from services.notifications.adapters.repositories.consumer import SqlConsumerRepository
from services.notifications.adapters.repositories.dispatcher import SqlDispatchRepository
from services.notifications.adapters.tables import contacts, deliveries, purchase_activity
from services.notifications.bootstrap import make_subscription
from services.notifications.domain.model import Channel, Contact, schedule
from services.notifications.handlers import welcome_id
from services.notifications.settings import NotificationsSettings
from shared.clock import FixedClock
from shared.messaging import events, topics
from shared.messaging.consumer import EventConsumer
from shared.messaging.events import CloudEvent, new_event
from shared.messaging.kafka import client_options
from tests.support import factories
from tests.support.kafka import events_for
from tests.support.notifications import delivering_settings, mails_to, new_customer, send, tier_up
from tests.support.polling import eventually
from tests.support.services import READER
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(stack: Stack) -> NotificationsSettings:
    return delivering_settings(stack)


def enrolment(
    customer_id: str, email: str | None, *, consent_email: bool, locale: str = "en"
) -> CloudEvent:
    return factories.enrolment(
        customer_id, locale=locale, email=email, consent=events.Consent(email=consent_email)
    )


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
    notification_id = welcome_id(customer_id, Channel.EMAIL)
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
    assert "programma fedeltà" in plain_text(mail)


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
    assert "Gold" in plain_text(mails[0])


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
        found = await events_for(stack.kafka, topics.NOTIFICATIONS, customer_id)
        return found or None

    (event,) = await eventually(delivered, within=60, what="notification.delivered on Kafka")
    assert event.type == events.NOTIFICATION_DELIVERED
    assert events.NotificationDelivered.model_validate(event.data) == events.NotificationDelivered(
        notification_id=welcome_id(customer_id, Channel.EMAIL),
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
        repository, log = SqlConsumerRepository(conn), SqlApiRepository(conn)
        assert await repository.schedule([first]) == {first.notification_id}
        assert await repository.schedule([second]) == set()  # other id, same cause and template
        assert len(await log.deliveries_for(customer_id, 10)) == 1
        await conn.rollback()
    async with database.begin() as conn:
        repository, log = SqlConsumerRepository(conn), SqlApiRepository(conn)
        # The same within one multi-row statement.
        assert await repository.schedule([first, second]) == {first.notification_id}
        assert len(await log.deliveries_for(customer_id, 10)) == 1
        await conn.rollback()


async def test_a_claimed_message_is_skipped_by_another_dispatcher(database: AsyncEngine) -> None:
    customer_id, _ = new_customer()
    # Due only in a far future, so the service's own running dispatcher leaves it alone; and
    # created long ago, so it is the first of the oldest-first claim whatever other tests left
    # scheduled in this database.
    future = datetime.now(UTC) + timedelta(days=365 * 50)
    delivery = schedule(
        notification_id=str(uuid.uuid4()),
        customer_id=customer_id,
        channel=Channel.EMAIL,
        template="welcome",
        cause_event_id=str(uuid.uuid4()),
        now=datetime(2001, 1, 1, tzinfo=UTC),
        send_at=future,
    )
    async with database.begin() as conn:
        await SqlConsumerRepository(conn).schedule([delivery])
    try:
        async with database.begin() as first, database.begin() as second:
            claimed = await SqlDispatchRepository(first).claim_due(future, 1000)
            assert delivery.notification_id in {d.notification_id for d in claimed}
            also_claimed = await SqlDispatchRepository(second).claim_due(future, 1000)
            assert delivery.notification_id not in {d.notification_id for d in also_claimed}
    finally:
        async with database.begin() as conn:
            await conn.execute(
                sa.text("DELETE FROM deliveries WHERE notification_id = :id"),
                {"id": delivery.notification_id},
            )


# -- the batch path ----------------------------------------------------------------------------

FAR_FUTURE = datetime.now(UTC) + timedelta(days=365 * 50)  # the running dispatcher leaves it be


class Message:
    """A Kafka record as the consumer sees it."""

    def __init__(self, topic: str, offset: int, event: CloudEvent) -> None:
        self.topic, self.partition, self.offset = topic, 0, offset
        self.key: bytes | None = event.subject.encode()
        self.value: bytes | None = event.to_bytes()


class NoDeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None]] = []

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.sent.append((topic, key))


def consumer_on(database: AsyncEngine) -> tuple[EventConsumer, NoDeadLetters]:
    clock = FixedClock(FAR_FUTURE)
    dead_letters = NoDeadLetters()
    consumer = EventConsumer(
        service="notifications",
        subscription=make_subscription(clock),
        bootstrap_servers="127.0.0.1:1",  # records are handed to it: it never polls
        engine=database,
        inbox_table=tables.inbox,
        dead_letters=dead_letters,
        clock=clock,
    )
    return consumer, dead_letters


def customer_story(customer_id: str, number: int, at: datetime) -> list[tuple[str, CloudEvent]]:
    """One customer's events, in order; the shape depends on `number`, the times on `at`."""

    def profile(kind: type[events.CustomerProfile], minutes: int, email: str) -> CloudEvent:
        return new_event(
            kind(
                customer_id=customer_id,
                partner_id="demo",
                enrolled_at=at,
                email=email,
                consent=events.Consent(email=number % 2 == 0),
            ),
            source="ingest/demo",
            subject=customer_id,
            time=at + timedelta(minutes=minutes),
        )

    def erasure() -> CloudEvent:
        return new_event(
            events.CustomerErased(customer_id=customer_id),
            source="ingest/demo",
            subject=customer_id,
            time=at + timedelta(minutes=9),
        )

    def tier(direction: str) -> CloudEvent:
        return new_event(
            events.TierChanged.model_validate(
                {
                    "customer_id": customer_id,
                    "from_tier": "silver",
                    "to_tier": "gold" if direction == "up" else "bronze",
                    "direction": direction,
                    "reason": "qualifying spend",
                    "effective_at": at,
                    "review_at": at + timedelta(days=365),
                }
            ),
            source="tiers",
            subject=customer_id,
            time=at,
        )

    purchase = factories.purchase(customer_id, "12.50", at=at, purchase_id=f"p-{customer_id}")
    enrolled, updated = events.CustomerEnrolled, events.CustomerUpdated
    c, t, p = topics.CUSTOMERS, topics.TIERS, topics.PURCHASES
    stories = [
        [
            (c, profile(enrolled, 0, f"a{number}@example.com")),
            (c, profile(updated, 5, f"newest{number}@example.com")),
            (c, profile(updated, 2, f"replayed{number}@example.com")),
            (t, tier("up")),
        ],
        [(c, profile(enrolled, 0, f"a{number}@example.com")), (c, erasure())],
        [
            (c, profile(enrolled, 0, f"a{number}@example.com")),
            (c, erasure()),
            (c, profile(enrolled, 10, f"again{number}@example.com")),
            (t, tier("down")),
        ],
        [(c, profile(updated, 3, f"u{number}@example.com")), (t, tier("up"))],
        [(c, profile(enrolled, 0, f"a{number}@example.com")), (t, tier("up")), (c, erasure())],
        [(p, purchase), (c, profile(enrolled, 0, f"a{number}@example.com"))],
    ]
    return stories[number % len(stories)]


def interleaved(prefix: str, count: int, at: datetime) -> list[tuple[str, CloudEvent]]:
    """Every customer's story, taken in turns: each customer's events stay in their order."""
    stories = [customer_story(f"{prefix}-{n}", n, at) for n in range(count)]
    merged: list[tuple[str, CloudEvent]] = []
    for step in range(max(len(story) for story in stories)):
        merged.extend(story[step] for story in stories if step < len(story))
    return merged


async def state_of(database: AsyncEngine, prefix: str) -> tuple[list[Any], list[Any]]:
    """Contacts and messages of a prefix's customers, with the customer told by number only."""
    number = sa.func.split_part(sa.literal_column("customer_id"), "-", 3)
    async with database.connect() as conn:
        stored_contacts = (
            await conn.execute(
                sa.select(
                    number,
                    contacts.c.email,
                    contacts.c.consent_email,
                    contacts.c.locale,
                    contacts.c.updated_at,
                )
                .where(contacts.c.customer_id.startswith(f"{prefix}-"))
                .order_by(number, contacts.c.email)
            )
        ).all()
        messages = (
            await conn.execute(
                sa.select(
                    number,
                    deliveries.c.template,
                    deliveries.c.status,
                    deliveries.c.last_error,
                    deliveries.c.params,
                    deliveries.c.created_at,
                )
                .where(deliveries.c.customer_id.startswith(f"{prefix}-"))
                .order_by(number, deliveries.c.template, deliveries.c.status)
            )
        ).all()
    return [tuple(row) for row in stored_contacts], [tuple(row) for row in messages]


async def last_purchases(database: AsyncEngine, prefix: str) -> list[tuple[str, datetime]]:
    """Each customer's last purchase time, the customer named without the prefix."""
    async with database.connect() as conn:
        rows = await conn.execute(
            sa.select(purchase_activity.c.customer_id, purchase_activity.c.last_purchase_at)
            .where(purchase_activity.c.customer_id.startswith(prefix))
            .order_by(purchase_activity.c.customer_id)
        )
        return [(row.customer_id.removeprefix(prefix), row.last_purchase_at) for row in rows]


async def forget(database: AsyncEngine, prefixes: list[str]) -> None:
    async with database.begin() as conn:
        for prefix in prefixes:
            await conn.execute(contacts.delete().where(contacts.c.customer_id.startswith(prefix)))
            await conn.execute(
                purchase_activity.delete().where(purchase_activity.c.customer_id.startswith(prefix))
            )
            await conn.execute(
                deliveries.delete().where(deliveries.c.customer_id.startswith(prefix))
            )


async def test_a_batch_of_many_customers_ends_as_the_same_events_one_by_one(
    database: AsyncEngine,
) -> None:
    token = uuid.uuid4().hex[:8]
    at_once, one_by_one = f"batch-{token}", f"single-{token}"
    at = datetime.now(UTC).replace(microsecond=0)
    batch = interleaved(at_once, 60, at)
    singles = interleaved(one_by_one, 60, at)
    consumer, dead_letters = consumer_on(database)
    try:
        messages = [Message(topic, n, event) for n, (topic, event) in enumerate(batch)]
        await consumer.process_batch(messages)
        for n, (topic, event) in enumerate(singles):
            await consumer.process_batch([Message(topic, n, event)])

        batched = await state_of(database, at_once)
        assert batched == await state_of(database, one_by_one)
        stored_contacts, messages_stored = batched
        # 10 customers per story shape: what each shape must leave behind.
        assert len(stored_contacts) == 40  # the two erased-for-good shapes have none left
        # The newest profile won over the replayed older one after it in the same batch.
        newest = [row for row in stored_contacts if row[1].startswith("newest")]
        assert len(newest) == 10
        assert sorted({(m[1], m[2], m[3]) for m in messages_stored}) == [
            ("tier_down", "scheduled", None),
            ("tier_up", "scheduled", None),
            ("tier_up", "suppressed", "customer erased"),
            ("welcome", "scheduled", None),
            ("welcome", "suppressed", "customer erased"),
        ]
        assert len(messages_stored) == 10 * (2 + 1 + 3 + 1 + 2 + 1)
        assert dead_letters.sent == []

        # Every event was claimed, the purchases too: they feed the win-back job.
        async with database.connect() as conn:
            claimed = set(
                (
                    await conn.execute(
                        sa.select(tables.inbox.c.event_id).where(
                            tables.inbox.c.event_id.in_([event.id for _, event in batch])
                        )
                    )
                ).scalars()
            )
        assert claimed == {event.id for _, event in batch}
        purchases_kept = await last_purchases(database, at_once)
        assert len(purchases_kept) == 10  # the shape that buys
        assert purchases_kept == await last_purchases(database, one_by_one)

        # The whole batch redelivered changes nothing.
        await consumer.process_batch(messages)
        assert await state_of(database, at_once) == batched
    finally:
        await forget(database, [at_once, one_by_one])


def versioned_profile(
    kind: type[events.CustomerProfile],
    customer_id: str,
    *,
    consent_email: bool,
    version: int | None,
    at: datetime,
) -> CloudEvent:
    return new_event(
        kind(
            customer_id=customer_id,
            partner_id="demo",
            enrolled_at=at,
            email=f"{customer_id}@example.com",
            consent=events.Consent(email=consent_email),
            version=version,
        ),
        source="ingest/demo",
        subject=customer_id,
        time=at,
    )


async def stored_profile(database: AsyncEngine, customer_id: str) -> tuple[Any, ...] | None:
    async with database.connect() as conn:
        row = (
            await conn.execute(
                sa.select(contacts.c.consent_email, contacts.c.profile_version).where(
                    contacts.c.customer_id == customer_id
                )
            )
        ).first()
    return None if row is None else tuple(row)


async def test_a_consent_withdrawal_is_never_undone_by_an_older_version(
    database: AsyncEngine,
) -> None:
    """Consent given (version 2) and withdrawn (version 3) by racing PATCHes, the withdrawal
    stamped by an ingest instance whose clock was behind: the older version arrives after it,
    in the same batch for one customer and in a later batch for the other."""
    prefix = f"versions-{uuid.uuid4().hex[:8]}"
    same_batch, later_batch = f"{prefix}-1", f"{prefix}-2"
    at = datetime.now(UTC)
    enrolled, updated = events.CustomerEnrolled, events.CustomerUpdated

    def race(customer_id: str) -> tuple[CloudEvent, CloudEvent, CloudEvent]:
        return (
            versioned_profile(enrolled, customer_id, consent_email=False, version=1, at=at),
            versioned_profile(
                updated, customer_id, consent_email=True, version=2, at=at + timedelta(minutes=5)
            ),
            versioned_profile(
                updated, customer_id, consent_email=False, version=3, at=at + timedelta(minutes=1)
            ),
        )

    first_enrolment, first_given, first_withdrawn = race(same_batch)
    second_enrolment, second_given, second_withdrawn = race(later_batch)
    consumer, dead_letters = consumer_on(database)
    c = topics.CUSTOMERS
    try:
        first = [
            Message(c, 0, first_enrolment),
            Message(c, 1, first_withdrawn),
            Message(c, 2, first_given),
            Message(c, 3, second_enrolment),
            Message(c, 4, second_withdrawn),
        ]
        await consumer.process_batch(first)
        assert await stored_profile(database, same_batch) == (False, 3)
        assert await stored_profile(database, later_batch) == (False, 3)

        await consumer.process_batch([Message(c, 5, second_given)])
        assert await stored_profile(database, later_batch) == (False, 3)

        # Redelivered, and re-sent under new ids (a producer retrying): nothing changes.
        await consumer.process_batch(first)
        resent = [
            event.model_copy(update={"id": str(uuid.uuid4())})
            for event in (first_given, second_given, second_enrolment)
        ]
        await consumer.process_batch([Message(c, 6 + n, e) for n, e in enumerate(resent)])
        assert await stored_profile(database, same_batch) == (False, 3)
        assert await stored_profile(database, later_batch) == (False, 3)
        assert dead_letters.sent == []
    finally:
        await forget(database, [prefix])


async def test_versions_decide_over_times_and_only_unversioned_profiles_go_by_time(
    database: AsyncEngine,
) -> None:
    customer_id, _ = new_customer()
    at = datetime.now(UTC)

    def profile(version: int | None, minutes: int, consent_email: bool) -> Contact:
        return Contact(
            customer_id=customer_id,
            locale="en",
            time_zone="UTC",
            updated_at=at + timedelta(minutes=minutes),
            consent_email=consent_email,
            profile_version=version,
        )

    steps = [
        # (profile offered, what is stored after it: consent, version)
        (profile(None, 10, True), (True, None)),  # nothing stored: taken
        (profile(None, 5, False), (True, None)),  # unversioned and older: ignored
        (profile(None, 10, False), (False, None)),  # unversioned, same time: taken
        (profile(2, 0, True), (True, 2)),  # versioned beats unversioned, whatever the time
        (profile(None, 60, False), (True, 2)),  # unversioned never beats versioned
        (profile(2, 60, False), (True, 2)),  # the same version again: ignored
        (profile(1, 60, False), (True, 2)),  # an older version: ignored
        (profile(3, -60, False), (False, 3)),  # a newer version, with an earlier time: taken
    ]
    try:
        before: Contact | None = None
        for offered, expected in steps:
            async with database.begin() as conn:
                await SqlConsumerRepository(conn).upsert_contacts([offered])
            async with database.connect() as conn:
                stored = await SqlDispatchRepository(conn).contact(customer_id)
            assert stored is not None
            assert (stored.consent_email, stored.profile_version) == expected, offered
            # The SQL condition is the domain's rule, which the batch and the fakes use.
            taken = before is None or offered.supersedes(before)
            assert stored == (offered if taken else before), offered
            before = stored
    finally:
        await forget(database, [customer_id])


async def test_many_enrolments_published_at_once_each_get_one_welcome(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    prefix = f"burst-{uuid.uuid4().hex[:8]}"
    burst = [enrolment(f"{prefix}-{n}", None, consent_email=False) for n in range(300)]
    producer = AIOKafkaProducer(**client_options(stack.kafka), acks="all")
    await producer.start()
    try:
        for event in burst + burst:  # and every one of them delivered twice
            await producer.send(
                topics.CUSTOMERS, value=event.to_bytes(), key=event.subject.encode()
            )
        await producer.flush()
    finally:
        await producer.stop()

    async def counts() -> tuple[int, int] | None:
        async with database.connect() as conn:
            stored = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(contacts)
                .where(contacts.c.customer_id.startswith(f"{prefix}-"))
            )
            welcomes = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(deliveries)
                .where(deliveries.c.customer_id.startswith(f"{prefix}-"))
            )
        found = (int(stored or 0), int(welcomes or 0))
        return found if found[0] >= len(burst) else None

    assert await eventually(counts, within=60, what="every enrolment applied") == (300, 300)
    try:
        assert [i["template"] for i in await delivery_log(client, f"{prefix}-7")] == ["welcome"]
    finally:
        await forget(database, [prefix])


async def _some(items: list[EmailMessage]) -> list[EmailMessage] | None:
    return items or None


def plain_text(mail: EmailMessage) -> str:
    """The plain-text part of an email that also carries an HTML alternative."""
    part = mail.get_body(("plain",))
    assert part is not None
    return str(part.get_content())
