"""The customers topic is compacted: a customer's enrolment may be gone, leaving only their
latest `customer.updated`. Notifications welcomes a customer first seen that way when they
enrolled recently, and never welcomes anyone twice."""

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from services.notifications.domain.model import Channel, DeliveryStatus, PartnerWebhook
from services.notifications.handlers import (
    DEFAULT_WELCOME_WINDOW,
    ERASED,
    Context,
    apply_batch,
    welcome_id,
)
from services.notifications.settings import NotificationsSettings
from shared.messaging import events
from shared.messaging.events import CloudEvent, new_event
from shared.messaging.outbox import CollectingSink
from tests.support.fakes.notifications import NOW, FakeNotifications, enrolled


@pytest.fixture
def notifications() -> FakeNotifications:
    return FakeNotifications()


async def apply_all(
    batch: Sequence[CloudEvent],
    notifications: FakeNotifications,
    *,
    welcome_window: timedelta = DEFAULT_WELCOME_WINDOW,
) -> None:
    context = Context(
        notifications=notifications,
        sink=CollectingSink(),
        now=NOW,
        welcome_window=welcome_window,
    )
    await apply_batch(batch, context)


def updated(
    customer_id: str = "c1",
    *,
    enrolled_at: datetime = NOW,
    at: datetime = NOW + timedelta(hours=1),
    email: str | None = "ada.new@example.com",
    phone: str | None = None,
    consent_sms: bool = False,
    version: int = 2,
) -> CloudEvent:
    return new_event(
        events.CustomerUpdated(
            customer_id=customer_id,
            partner_id="demo",
            enrolled_at=enrolled_at,
            email=email,
            phone=phone,
            consent=events.Consent(email=True, sms=consent_sms),
            version=version,
        ),
        source="ingest/demo",
        subject=customer_id,
        time=at,
    )


def erased(customer_id: str = "c1") -> CloudEvent:
    return new_event(
        events.CustomerErased(customer_id=customer_id),
        source="ingest/demo",
        subject=customer_id,
        time=NOW + timedelta(hours=2),
    )


def welcomes(notifications: FakeNotifications) -> list[tuple[str, str, Channel]]:
    return sorted(
        (d.notification_id, d.customer_id, d.channel)
        for d in notifications.deliveries.values()
        if d.template == "welcome"
    )


async def test_a_customer_known_only_from_a_recent_update_is_welcomed_once(
    notifications: FakeNotifications,
) -> None:
    cause = updated(enrolled_at=NOW, at=NOW + timedelta(days=6, hours=23))
    await apply_all([cause], notifications)

    welcome = notifications.only()
    assert (welcome.notification_id, welcome.template, welcome.channel) == (
        welcome_id("c1", Channel.EMAIL),
        "welcome",
        Channel.EMAIL,
    )
    assert (welcome.cause_event_id, welcome.status) == (cause.id, DeliveryStatus.SCHEDULED)
    assert notifications.contacts["c1"].email == "ada.new@example.com"

    await apply_all(
        [updated(version=3, at=NOW + timedelta(days=6, hours=23, minutes=1))], notifications
    )
    assert len(notifications.deliveries) == 1  # a known customer's change welcomes no one


async def test_a_long_standing_customer_known_only_from_an_update_is_not_welcomed(
    notifications: FakeNotifications,
) -> None:
    # Enrolled a day longer ago than the window, measured on the event's own time.
    await apply_all([updated(enrolled_at=NOW, at=NOW + timedelta(days=8))], notifications)
    assert notifications.deliveries == {}
    assert notifications.contacts["c1"].email == "ada.new@example.com"  # the profile is kept


async def test_the_window_is_a_setting(notifications: FakeNotifications) -> None:
    at = NOW + timedelta(days=20)
    await apply_all([updated("c1", at=at)], notifications, welcome_window=timedelta(days=30))
    await apply_all([updated("c2", at=at)], notifications, welcome_window=timedelta(days=10))
    assert [customer for _, customer, _ in welcomes(notifications)] == ["c1"]
    assert NotificationsSettings.model_fields["welcome_window_days"].default == 7


async def test_an_enrolment_then_an_update_in_one_batch_welcome_once(
    notifications: FakeNotifications,
) -> None:
    enrolment = enrolled("c1", email="ada@example.com", version=1)
    await apply_all([enrolment, updated()], notifications)
    welcome = notifications.only()
    assert (welcome.notification_id, welcome.cause_event_id) == (
        welcome_id("c1", Channel.EMAIL),
        enrolment.id,
    )


async def test_an_enrolment_then_an_update_across_batches_welcome_once(
    notifications: FakeNotifications,
) -> None:
    enrolment = enrolled("c1", email="ada@example.com", version=1)
    await apply_all([enrolment], notifications)
    await apply_all([updated()], notifications)
    assert welcomes(notifications) == [(welcome_id("c1", Channel.EMAIL), "c1", Channel.EMAIL)]
    assert notifications.only().cause_event_id == enrolment.id


@pytest.mark.parametrize("one_batch", [True, False])
async def test_an_update_before_a_late_enrolment_welcomes_once(
    notifications: FakeNotifications, one_batch: bool
) -> None:
    update = updated()
    enrolment = enrolled("c1", email="ada@example.com", version=1)
    if one_batch:
        await apply_all([update, enrolment], notifications)
    else:
        await apply_all([update], notifications)
        await apply_all([enrolment], notifications)
    welcome = notifications.only()
    assert (welcome.notification_id, welcome.cause_event_id) == (
        welcome_id("c1", Channel.EMAIL),
        update.id,
    )
    assert notifications.contacts["c1"].email == "ada.new@example.com"  # the newer profile


async def test_the_same_welcome_from_another_cause_is_the_same_message(
    notifications: FakeNotifications,
) -> None:
    # Even if both causes were applied as a first profile (the stored contact lost, say), the
    # welcome's id is the customer's: the second is deduplicated, not sent again.
    await apply_all([updated()], notifications)
    notifications.contacts.clear()
    await apply_all([enrolled("c1", version=1)], notifications)
    assert len(welcomes(notifications)) == 1


async def test_an_erased_customer_welcomed_before_is_not_welcomed_again_in_one_batch(
    notifications: FakeNotifications,
) -> None:
    await apply_all(
        [updated(), erased(), updated(version=3, at=NOW + timedelta(hours=3))], notifications
    )
    welcome = notifications.only()
    assert (welcome.status, welcome.last_error) == (DeliveryStatus.SUPPRESSED, ERASED)


async def test_an_erased_customer_known_only_from_an_update_gets_no_welcome(
    notifications: FakeNotifications,
) -> None:
    # Replayed from a compacted topic: the latest update, then the erasure.
    await apply_all([updated(), erased()], notifications)
    welcome = notifications.only()
    assert (welcome.status, welcome.last_error) == (DeliveryStatus.SUPPRESSED, ERASED)
    assert "c1" not in notifications.contacts

    # Across batches, and a stray update after the erasure: the welcome stays suppressed.
    await apply_all([updated("c2")], notifications)
    await apply_all([erased("c2")], notifications)
    await apply_all([updated("c2", version=3, at=NOW + timedelta(hours=3))], notifications)
    assert [
        (d.status, d.last_error) for d in notifications.deliveries.values() if d.customer_id == "c2"
    ] == [(DeliveryStatus.SUPPRESSED, ERASED)]


async def test_the_welcome_from_an_update_chooses_channels_as_an_enrolment_does(
    notifications: FakeNotifications,
) -> None:
    notifications.webhooks["demo"] = PartnerWebhook(
        partner_id="demo",
        url="https://partner.example.com/hooks/fedelta",
        secret="s3cret-s3cret-s3cret",
        created_at=NOW,
    )
    await apply_all(
        [updated(phone="+393331234567", consent_sms=True)],
        notifications,
    )
    assert welcomes(notifications) == sorted(
        (welcome_id("c1", channel), "c1", channel)
        for channel in (Channel.EMAIL, Channel.SMS, Channel.WEBHOOK)
    )


async def test_a_batch_of_updates_costs_one_load_whatever_its_size(
    notifications: FakeNotifications,
) -> None:
    await apply_all([updated(f"c{n}") for n in range(300)], notifications)
    assert len(notifications.deliveries) == 300
    # The stored contacts, the partners with a webhook; the messages, the contacts.
    assert notifications.statements == 4
