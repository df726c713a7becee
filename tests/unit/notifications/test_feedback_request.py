"""The invitation to give feedback after a purchase: off by default, one
email per purchase the configured delay after it (never before now), in the bulk lane, in
every locale, and none for a member without an email address."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.notifications.bootstrap import feedback_request_delay
from services.notifications.domain import feedback as rules
from services.notifications.domain import templates
from services.notifications.domain.model import Channel, Delivery, DeliveryStatus, Lane, lane_of
from services.notifications.handlers import Context, apply_batch
from services.notifications.settings import NotificationsSettings
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.notifications import NOW, FakeNotifications, enrolled

DAY = timedelta(hours=24)


async def apply(
    notifications: FakeNotifications, *batch: CloudEvent, delay: timedelta | None = DAY
) -> None:
    context = Context(
        notifications=notifications, sink=CollectingSink(), now=NOW, feedback_request_delay=delay
    )
    await apply_batch(list(batch), context)


def invitations(notifications: FakeNotifications) -> list[Delivery]:
    return [d for d in notifications.deliveries.values() if d.template == rules.FEEDBACK_REQUEST]


def bought(purchase_id: str, hours_ago: float = 1, customer_id: str = "c1") -> CloudEvent:
    at = NOW - timedelta(hours=hours_ago)
    return factories.purchase(customer_id, at=at, purchase_id=purchase_id)


async def test_off_by_default_no_one_is_invited() -> None:
    notifications = FakeNotifications()
    await apply(notifications, enrolled(), bought("p1"), delay=None)
    assert invitations(notifications) == []


async def test_one_email_per_purchase_the_delay_after_it() -> None:
    notifications = FakeNotifications()
    await apply(notifications, enrolled(), bought("p1", hours_ago=2))
    await apply(notifications, bought("p1", hours_ago=2))  # the purchase told again
    [invitation] = invitations(notifications)
    assert invitation.channel == Channel.EMAIL
    assert invitation.next_attempt_at == NOW - timedelta(hours=2) + DAY
    assert invitation.params["purchased_on"] == (NOW - timedelta(hours=2)).date().isoformat()
    assert invitation.notification_id == rules.feedback_request_id(factories.PARTNER, "p1")


async def test_a_purchase_read_after_the_delay_invites_at_once() -> None:
    notifications = FakeNotifications()
    await apply(notifications, enrolled(), bought("p1", hours_ago=30))
    [invitation] = invitations(notifications)
    assert invitation.next_attempt_at == NOW


async def test_a_member_without_an_email_or_consent_is_not_invited() -> None:
    notifications = FakeNotifications()
    await apply(notifications, enrolled(email=None), bought("p1"))
    await apply(notifications, enrolled("c2", consent_email=False), bought("p2", customer_id="c2"))
    assert invitations(notifications) == []


async def test_an_erasure_suppresses_the_waiting_invitation() -> None:
    notifications = FakeNotifications()
    await apply(notifications, enrolled(), bought("p1"))
    await apply(notifications, factories.erasure("c1", at=NOW))
    [invitation] = invitations(notifications)
    assert invitation.status == DeliveryStatus.SUPPRESSED


def test_the_invitation_waits_in_the_bulk_lane() -> None:
    assert lane_of(rules.FEEDBACK_REQUEST) == Lane.BULK


@pytest.mark.parametrize("locale", ["en", "it", "fi", "pl"])
def test_the_invitation_is_written_in_every_locale(locale: str) -> None:
    rendered = templates.render(rules.FEEDBACK_REQUEST, locale, templates.SAMPLE_PARAMS)
    assert rendered.locale == locale
    assert "2027" in rendered.body


def test_the_delay_setting_is_off_at_zero() -> None:
    base = {
        "database_url": "postgresql+asyncpg://u:p@localhost/db",
        "kafka_bootstrap_servers": "localhost:9092",
        "admin_token_sha256": "0" * 64,
    }
    assert feedback_request_delay(NotificationsSettings(**base)) is None  # type: ignore[arg-type]
    on = NotificationsSettings(**base, feedback_request_delay_hours=36)  # type: ignore[arg-type]
    assert feedback_request_delay(on) == timedelta(hours=36)
