"""An imported member (issue 23, product §11): welcomed only when the import asked for it,
told nothing of what the import brought over (the opening lots, the opening tier), and
otherwise a member like any other."""

from collections.abc import Sequence
from datetime import timedelta

import pytest

from services.notifications.domain.model import Channel
from services.notifications.handlers import Context, apply_batch, welcome_id
from shared.messaging import events
from shared.messaging.events import CloudEvent, new_event
from shared.messaging.outbox import CollectingSink
from tests.support.fakes.notifications import NOW, FakeNotifications

WINDOW = timedelta(minutes=10)


@pytest.fixture
def notifications() -> FakeNotifications:
    return FakeNotifications()


async def apply_all(batch: Sequence[CloudEvent], notifications: FakeNotifications) -> None:
    context = Context(
        notifications=notifications, sink=CollectingSink(), now=NOW, digest_window=WINDOW
    )
    await apply_batch(batch, context)


def imported(customer_id: str = "c1", *, welcome: bool) -> CloudEvent:
    return new_event(
        events.CustomerEnrolled(
            customer_id=customer_id,
            partner_id="old-shop",
            enrolled_at=NOW,
            email="ada@example.com",
            phone="+358401234567",
            consent=events.Consent(email=True, sms=True),
            imported=True,
            welcome=welcome,
            version=1,
        ),
        source="ingest/old-shop",
        subject=customer_id,
        time=NOW,
    )


def updated(customer_id: str = "c1") -> CloudEvent:
    return new_event(
        events.CustomerUpdated(
            customer_id=customer_id,
            partner_id="old-shop",
            enrolled_at=NOW,
            email="ada.new@example.com",
            consent=events.Consent(email=True),
            version=2,
        ),
        source="ingest/old-shop",
        subject=customer_id,
        time=NOW + timedelta(minutes=1),
    )


def earned(points: int, reason: str, customer_id: str = "c1") -> CloudEvent:
    return new_event(
        events.PointsEarned(
            customer_id=customer_id,
            points=points,
            reason=reason,
            rule_ids=[reason],
            available_at=NOW,
            expires_at=NOW + timedelta(days=90),
        ),
        source="points",
        subject=customer_id,
        time=NOW,
    )


def tier_up(reason: str, customer_id: str = "c1") -> CloudEvent:
    return new_event(
        events.TierChanged(
            customer_id=customer_id,
            from_tier="bronze",
            to_tier="gold",
            direction="up",
            reason=reason,
            effective_at=NOW - timedelta(days=100),
            review_at=NOW + timedelta(days=265),
        ),
        source="tiers",
        subject=customer_id,
        time=NOW,
    )


def templates(notifications: FakeNotifications) -> list[tuple[str, str, Channel]]:
    return sorted((d.customer_id, d.template, d.channel) for d in notifications.deliveries.values())


async def test_without_the_welcome_an_imported_member_is_not_welcomed(
    notifications: FakeNotifications,
) -> None:
    await apply_all([imported(welcome=False)], notifications)
    assert notifications.deliveries == {}
    contact = notifications.contacts["c1"]  # kept as for any member
    assert (contact.email, contact.consent_email, contact.consent_sms) == (
        "ada@example.com",
        True,
        True,
    )


async def test_nor_by_a_later_profile_or_a_redelivery(notifications: FakeNotifications) -> None:
    enrolment = imported(welcome=False)
    await apply_all([enrolment, updated()], notifications)
    await apply_all([enrolment, updated()], notifications)
    assert notifications.deliveries == {}
    assert notifications.contacts["c1"].email == "ada.new@example.com"


async def test_with_the_welcome_an_imported_member_is_welcomed_on_every_channel_once(
    notifications: FakeNotifications,
) -> None:
    enrolment = imported(welcome=True)
    await apply_all([enrolment, enrolment], notifications)
    await apply_all([enrolment], notifications)
    assert templates(notifications) == [
        ("c1", "welcome", Channel.EMAIL),
        ("c1", "welcome", Channel.SMS),
    ]
    assert welcome_id("c1", Channel.EMAIL) in notifications.deliveries


async def test_the_opening_lots_and_tier_tell_the_member_nothing(
    notifications: FakeNotifications,
) -> None:
    await apply_all(
        [imported(welcome=False), earned(300, "import"), earned(50, "import"), tier_up("import")],
        notifications,
    )
    assert notifications.deliveries == {}


async def test_with_the_welcome_only_the_welcome_and_its_bonus_are_told(
    notifications: FakeNotifications,
) -> None:
    await apply_all(
        [imported(welcome=True), earned(300, "import"), earned(100, "welcome"), tier_up("import")],
        notifications,
    )
    digests = [d for d in notifications.deliveries.values() if d.template == "points_earned"]
    assert [d.params["points"] for d in digests] == [100]
    assert sorted(d.template for d in notifications.deliveries.values()) == [
        "points_earned",
        "welcome",
        "welcome",
    ]


async def test_later_messages_go_out_as_for_any_member(notifications: FakeNotifications) -> None:
    await apply_all([imported(welcome=False), earned(300, "import")], notifications)
    await apply_all([earned(12, "purchase"), tier_up("qualifying spend")], notifications)
    assert templates(notifications) == [
        ("c1", "points_earned", Channel.EMAIL),
        ("c1", "tier_up", Channel.EMAIL),
        ("c1", "tier_up", Channel.SMS),
    ]
    [digest] = [d for d in notifications.deliveries.values() if d.template == "points_earned"]
    assert digest.params["points"] == 12


async def test_an_enrolment_that_is_not_imported_is_welcomed_as_always(
    notifications: FakeNotifications,
) -> None:
    enrolment = new_event(
        events.CustomerEnrolled(
            customer_id="c2", partner_id="demo", enrolled_at=NOW, email="bo@example.com"
        ),
        source="ingest/demo",
        subject="c2",
        time=NOW,
    )
    await apply_all([enrolment], notifications)
    assert templates(notifications) == [("c2", "welcome", Channel.EMAIL)]
