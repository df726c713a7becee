"""The notifications handlers on a fake repository: no database, no Kafka, no mail."""

from datetime import timedelta

import pytest

from services.notifications.domain.model import Channel, DeliveryStatus
from services.notifications.handlers import ERASED, HANDLERS, Context
from shared import events
from shared.events import CloudEvent, derived_event_id, new_event
from shared.outbox import CollectingSink
from tests.unit.notifications.fakes import NOW, FakeNotifications, enrolled, tier_changed


@pytest.fixture
def notifications() -> FakeNotifications:
    return FakeNotifications()


@pytest.fixture
def sink() -> CollectingSink:
    return CollectingSink()


async def apply(event: CloudEvent, notifications: FakeNotifications, sink: CollectingSink) -> None:
    await HANDLERS[event.type](event, Context(notifications=notifications, sink=sink, now=NOW))


def updated(customer_id: str, *, email: str | None, consent_email: bool, at: int) -> CloudEvent:
    time = NOW + timedelta(minutes=at)
    return new_event(
        events.CustomerUpdated(
            customer_id=customer_id,
            partner_id="demo",
            enrolled_at=NOW,
            email=email,
            consent=events.Consent(email=consent_email),
        ),
        source="ingest/demo",
        subject=customer_id,
        time=time,
    )


async def test_enrolment_with_consent_schedules_exactly_one_welcome(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    cause = enrolled("c1", email="ada@example.com", consent_email=True, locale="fi")
    await apply(cause, notifications, sink)

    welcome = notifications.only()
    assert welcome.notification_id == derived_event_id(cause.id, "welcome/email")
    assert (welcome.customer_id, welcome.template, welcome.channel) == (
        "c1",
        "welcome",
        Channel.EMAIL,
    )
    assert (welcome.status, welcome.attempts, welcome.next_attempt_at) == (
        DeliveryStatus.SCHEDULED,
        0,
        NOW,
    )
    assert welcome.cause_event_id == cause.id
    assert sink.events == []  # nothing is sent, let alone announced, inside the consumer


async def test_enrolment_stores_the_contact_from_the_profile(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    await apply(enrolled("c1", email="ada@example.com", locale="pl"), notifications, sink)
    contact = notifications.contacts["c1"]
    assert (contact.email, contact.locale, contact.consent_email) == ("ada@example.com", "pl", True)


async def test_enrolment_without_consent_still_schedules_to_be_suppressed_at_send_time(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    await apply(enrolled("c1", consent_email=False), notifications, sink)
    assert notifications.only().status is DeliveryStatus.SCHEDULED
    assert notifications.contacts["c1"].consent_email is False


async def test_the_same_enrolment_twice_schedules_one_welcome(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    cause = enrolled("c1")
    await apply(cause, notifications, sink)
    await apply(cause, notifications, sink)
    assert len(notifications.deliveries) == 1


async def test_an_update_changes_the_contact_and_schedules_nothing(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    await apply(enrolled("c1", consent_email=True), notifications, sink)
    await apply(
        updated("c1", email="new@example.com", consent_email=False, at=5), notifications, sink
    )
    contact = notifications.contacts["c1"]
    assert (contact.email, contact.consent_email) == ("new@example.com", False)
    assert len(notifications.deliveries) == 1


async def test_an_update_creates_a_contact_that_was_not_known(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    await apply(updated("c9", email="x@example.com", consent_email=True, at=1), notifications, sink)
    assert notifications.contacts["c9"].email == "x@example.com"
    assert notifications.deliveries == {}


async def test_erasure_removes_the_contact_and_what_still_waits_for_it(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    await apply(enrolled("c1"), notifications, sink)
    await apply(
        new_event(
            events.CustomerErased(customer_id="c1"), source="ingest/demo", subject="c1", time=NOW
        ),
        notifications,
        sink,
    )
    assert "c1" not in notifications.contacts
    welcome = notifications.only()
    assert (welcome.status, welcome.last_error) == (DeliveryStatus.SUPPRESSED, ERASED)


async def test_tier_up_schedules_a_tier_up_email_naming_the_new_tier(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    cause = tier_changed("c1", to_tier="platinum", direction="up")
    await apply(cause, notifications, sink)
    delivery = notifications.only()
    assert delivery.template == "tier_up"
    assert delivery.params == {"tier": "platinum"}
    assert delivery.notification_id == derived_event_id(cause.id, "tier_up/email")


async def test_tier_down_schedules_nothing_for_now(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    await apply(tier_changed("c1", to_tier="bronze", direction="down"), notifications, sink)
    assert notifications.deliveries == {}
    assert sink.events == []


def test_only_the_types_it_uses_have_handlers() -> None:
    assert set(HANDLERS) == {
        events.CUSTOMER_ENROLLED,
        events.CUSTOMER_UPDATED,
        events.CUSTOMER_ERASED,
        events.TIER_CHANGED,
    }
