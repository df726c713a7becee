"""The notifications handlers on a fake repository: no database, no Kafka, no mail."""

import logging
import random
from collections.abc import Sequence
from datetime import timedelta

import pytest

from services.notifications.bootstrap import make_subscription
from services.notifications.domain.model import Channel, DeliveryStatus
from services.notifications.handlers import (
    ERASED,
    HANDLED_TYPES,
    Context,
    apply_batch,
    welcome_id,
)
from shared.clock import FixedClock
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent, derived_event_id, new_event
from shared.messaging.outbox import CollectingSink
from tests.support.fakes.notifications import NOW, FakeNotifications, enrolled, tier_changed


@pytest.fixture
def notifications() -> FakeNotifications:
    return FakeNotifications()


@pytest.fixture
def sink() -> CollectingSink:
    return CollectingSink()


async def apply(event: CloudEvent, notifications: FakeNotifications, sink: CollectingSink) -> None:
    await apply_batch([event], Context(notifications=notifications, sink=sink, now=NOW))


async def apply_all(
    batch: Sequence[CloudEvent], notifications: FakeNotifications, sink: CollectingSink
) -> None:
    await apply_batch(batch, Context(notifications=notifications, sink=sink, now=NOW))


def erased(customer_id: str) -> CloudEvent:
    return new_event(
        events.CustomerErased(customer_id=customer_id),
        source="ingest/demo",
        subject=customer_id,
        time=NOW,
    )


def updated(
    customer_id: str,
    *,
    email: str | None,
    consent_email: bool,
    at: int,
    version: int | None = None,
) -> CloudEvent:
    time = NOW + timedelta(minutes=at)
    return new_event(
        events.CustomerUpdated(
            customer_id=customer_id,
            partner_id="demo",
            enrolled_at=NOW,
            email=email,
            consent=events.Consent(email=consent_email),
            version=version,
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
    assert welcome.notification_id == welcome_id("c1", Channel.EMAIL)
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
    # Enrolled a minute before: their enrolment was compacted away, so this welcomes them.
    assert notifications.only().template == "welcome"


async def test_erasure_removes_the_contact_and_what_still_waits_for_it(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    await apply(enrolled("c1"), notifications, sink)
    await apply(erased("c1"), notifications, sink)
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
    assert delivery.params == {"tier": "platinum", "from_tier": "silver"}
    assert delivery.notification_id == derived_event_id(cause.id, "tier_up/email")


async def test_tier_down_schedules_a_tier_down_email_naming_both_tiers(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    cause = tier_changed("c1", to_tier="bronze", direction="down")
    await apply(cause, notifications, sink)
    delivery = notifications.only()
    assert (delivery.template, delivery.params) == (
        "tier_down",
        {"tier": "bronze", "from_tier": "silver"},
    )
    assert delivery.notification_id == derived_event_id(cause.id, "tier_down/email")
    assert sink.events == []


def test_only_the_types_it_uses_are_handled() -> None:
    assert {
        events.CUSTOMER_ENROLLED,
        events.CUSTOMER_UPDATED,
        events.CUSTOMER_ERASED,
        events.TIER_CHANGED,
        events.TIER_DOWNGRADE_WARNING,
        events.POINTS_EARNED,
        events.POINTS_REDEEMED,
        events.POINTS_EXPIRING,
        events.COUPON_ISSUED,
        events.PURCHASE_COMPLETED,
        # Engagement: the member's stamp cards, challenges and badges; surprises and birthdays.
        events.STAMP_CARD_COMPLETED,
        events.CHALLENGE_COMPLETED,
        events.BADGE_EARNED,
        events.ENGAGEMENT_REWARDED,
        # Points' personal win-back offer: the win-back message that states it.
        events.POINTS_OFFER_GRANTED,
    } == HANDLED_TYPES


def test_the_points_types_it_tells_customers_about_are_claimed_and_completed_purchases() -> None:
    subscription = make_subscription(FixedClock(NOW))
    assert {topics.POINTS, topics.PURCHASES} <= set(subscription.topics)
    assert subscription.event_types == HANDLED_TYPES
    claimed_by_topic = {
        event_type
        for event_type in subscription.event_types
        if events.kind_of(event_type).topic in (topics.POINTS, topics.PURCHASES)
    }
    assert claimed_by_topic == {
        events.POINTS_EARNED,
        events.POINTS_REDEEMED,
        events.POINTS_EXPIRING,
        events.COUPON_ISSUED,  # a reward's coupon: redemption_confirmed with its code
        events.POINTS_OFFER_GRANTED,  # a win-back offer: win_back_offer
        events.PURCHASE_COMPLETED,  # the win-back job's last purchase times
    }


# -- batches ---------------------------------------------------------------------------------


async def test_within_a_batch_the_newest_profile_wins_whatever_its_place(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    await apply_all(
        [
            enrolled("c1", email="first@example.com"),
            updated("c1", email="newest@example.com", consent_email=False, at=10),
            updated("c1", email="replayed-older@example.com", consent_email=True, at=5),
            updated("c2", email="c2@example.com", consent_email=True, at=1),
        ],
        notifications,
        sink,
    )
    assert (notifications.contacts["c1"].email, notifications.contacts["c1"].consent_email) == (
        "newest@example.com",
        False,
    )
    assert notifications.contacts["c2"].email == "c2@example.com"


async def test_an_older_profile_in_a_batch_never_overwrites_a_newer_stored_one(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    stored = updated("c1", email="stored@example.com", consent_email=True, at=10)
    await apply(stored, notifications, sink)
    await apply_all(
        [updated("c1", email="older@example.com", consent_email=False, at=3)], notifications, sink
    )
    assert notifications.contacts["c1"].email == "stored@example.com"


# -- profile versions: the highest wins, whatever the event times and the order -----------------


def withdrawal_race(customer_id: str = "c1") -> tuple[CloudEvent, CloudEvent]:
    """Consent given (version 2), then withdrawn (version 3) by a PATCH whose ingest instance
    had a clock behind: the withdrawal carries the earlier time."""
    given = updated(customer_id, email="ada@example.com", consent_email=True, at=10, version=2)
    withdrawn = updated(customer_id, email="ada@example.com", consent_email=False, at=4, version=3)
    return given, withdrawn


async def test_an_older_version_after_a_newer_one_in_a_batch_leaves_the_withdrawal(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    given, withdrawn = withdrawal_race()
    await apply_all([enrolled("c1", version=1), withdrawn, given], notifications, sink)
    contact = notifications.contacts["c1"]
    assert (contact.consent_email, contact.profile_version) == (False, 3)


async def test_an_older_version_in_a_later_batch_leaves_the_withdrawal(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    given, withdrawn = withdrawal_race()
    await apply_all([enrolled("c1", version=1), withdrawn], notifications, sink)
    await apply_all([given, tier_changed("c1")], notifications, sink)
    contact = notifications.contacts["c1"]
    assert (contact.consent_email, contact.profile_version) == (False, 3)


async def test_a_newer_version_with_an_earlier_time_replaces_the_stored_profile(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    given, withdrawn = withdrawal_race()
    await apply(given, notifications, sink)
    await apply(withdrawn, notifications, sink)
    contact = notifications.contacts["c1"]
    assert (contact.consent_email, contact.profile_version) == (False, 3)


async def test_redelivering_an_old_version_changes_nothing(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    enrolment = enrolled("c1", email="first@example.com", version=1)
    given, withdrawn = withdrawal_race()
    await apply_all([enrolment, given], notifications, sink)
    await apply(withdrawn, notifications, sink)
    stored = dict(notifications.contacts)

    for old in (enrolment, given, withdrawn):
        await apply(old, notifications, sink)
    await apply_all([given, enrolment], notifications, sink)

    assert notifications.contacts == stored
    assert notifications.contacts["c1"].consent_email is False
    assert len(notifications.deliveries) == 1  # the one welcome, still


async def test_a_versioned_profile_replaces_one_from_before_versions_and_not_the_reverse(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    await apply(
        updated("c1", email="old@example.com", consent_email=True, at=10), notifications, sink
    )
    await apply(
        updated("c1", email="v@example.com", consent_email=False, at=1, version=4),
        notifications,
        sink,
    )
    await apply(
        updated("c1", email="late@example.com", consent_email=True, at=20), notifications, sink
    )
    contact = notifications.contacts["c1"]
    assert (contact.email, contact.consent_email, contact.profile_version) == (
        "v@example.com",
        False,
        4,
    )


async def test_an_erasure_still_wins_over_the_highest_version(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    given, withdrawn = withdrawal_race()
    await apply_all([withdrawn, erased("c1"), given], notifications, sink)
    # What follows the erasure is kept, whatever its version: the erasure removed the rest.
    assert notifications.contacts["c1"].profile_version == 2
    await apply(erased("c1"), notifications, sink)
    assert notifications.contacts == {}


async def test_an_erasure_after_the_enrolment_in_one_batch_leaves_no_contact_and_no_welcome(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    enrolment = enrolled("c1")
    await apply_all(
        [enrolment, updated("c1", email="x@example.com", consent_email=True, at=1), erased("c1")],
        notifications,
        sink,
    )
    assert "c1" not in notifications.contacts
    welcome = notifications.only()
    assert welcome.notification_id == welcome_id("c1", Channel.EMAIL)
    assert (welcome.status, welcome.last_error) == (DeliveryStatus.SUPPRESSED, ERASED)


async def test_what_follows_an_erasure_in_one_batch_is_kept(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    await apply(enrolled("c1", email="before@example.com"), notifications, sink)
    promotion = tier_changed("c1", to_tier="gold")
    await apply_all(
        [erased("c1"), enrolled("c1", email="again@example.com"), promotion], notifications, sink
    )
    assert notifications.contacts["c1"].email == "again@example.com"
    messages = notifications.deliveries.values()
    # A welcome is once per customer (and ingest refuses to enrol an erased id again).
    assert sorted((d.template, d.status, d.last_error) for d in messages) == [
        ("tier_up", DeliveryStatus.SCHEDULED, None),
        ("welcome", DeliveryStatus.SUPPRESSED, ERASED),
    ]


async def test_an_erasure_reaches_only_its_own_customers(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    await apply_all([enrolled("c1"), enrolled("c2")], notifications, sink)
    await apply_all([erased("c1"), tier_changed("c2")], notifications, sink)
    assert set(notifications.contacts) == {"c2"}
    assert sorted(
        (d.customer_id, d.template, d.status) for d in notifications.deliveries.values()
    ) == [
        ("c1", "welcome", DeliveryStatus.SUPPRESSED),
        ("c2", "tier_up", DeliveryStatus.SCHEDULED),
        ("c2", "welcome", DeliveryStatus.SCHEDULED),
    ]


async def test_a_batch_costs_a_few_statements_whatever_its_size(
    notifications: FakeNotifications, sink: CollectingSink
) -> None:
    batch = [enrolled(f"c{n}") for n in range(500)] + [tier_changed(f"c{n}") for n in range(500)]
    await apply_all(batch, notifications, sink)
    assert len(notifications.deliveries) == 1000
    # Two loads (the stored contacts, the partners with a webhook), two writes (the
    # messages, the contacts): constant, whatever the batch's size.
    assert notifications.statements == 4

    notifications.statements = 0
    await apply_all([erased(f"c{n}") for n in range(1000)], notifications, sink)
    assert notifications.contacts == {}
    assert notifications.statements == 4  # delete, suppress, and the two (empty) writes


async def test_one_log_line_per_batch_with_counts_and_no_personal_data(
    notifications: FakeNotifications, sink: CollectingSink, caplog: pytest.LogCaptureFixture
) -> None:
    batch = [enrolled(f"c{n}", email=f"person{n}@example.com") for n in range(20)]
    with caplog.at_level(logging.INFO, logger="services.notifications.handlers"):
        await apply_all([*batch, tier_changed("c1")], notifications, sink)
        await apply_all(batch, notifications, sink)  # nothing new: nothing to say
    (record,) = caplog.records
    message = record.getMessage()
    assert "scheduled 21 message(s)" in message
    assert "'tier_up': 1" in message and "'welcome': 20" in message
    assert "@" not in message


async def test_a_batch_ends_as_the_same_events_applied_one_by_one(
    sink: CollectingSink,
) -> None:
    """Random interleavings of every handled type for a few customers, including replayed
    older profiles, erasures and enrolments again after them."""
    generator = random.Random(20261122)  # seeded: the same cases every run
    for _ in range(200):
        batch = [_random_event(generator) for _ in range(generator.randint(1, 25))]
        one_by_one, at_once = FakeNotifications(), FakeNotifications()
        for event in batch:
            await apply(event, one_by_one, sink)
        await apply_all(batch, at_once, sink)
        assert at_once.contacts == one_by_one.contacts
        assert at_once.deliveries == one_by_one.deliveries


def _random_event(generator: random.Random) -> CloudEvent:
    customer_id = generator.choice(["c1", "c2", "c3"])
    kind = generator.choice(["enrolled", "updated", "erased", "tier_up", "tier_down"])
    if kind == "enrolled":
        return enrolled(
            customer_id,
            email=f"{generator.randint(1, 9)}@example.com",
            version=generator.choice([None, 1]),
        )
    if kind == "updated":
        return updated(
            customer_id,
            email=f"{generator.randint(1, 9)}@example.com",
            consent_email=generator.random() < 0.5,
            at=generator.randint(-3, 3),  # often older than what is stored, sometimes equal
            # Versions out of step with the times, and some from before versions existed.
            version=generator.choice([None, 1, 2, 3, 4]),
        )
    if kind == "erased":
        return erased(customer_id)
    return tier_changed(customer_id, direction="up" if kind == "tier_up" else "down")
