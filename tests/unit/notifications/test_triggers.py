"""Every trigger of the contract schedules its message, once; earnings close together are
merged into one points digest."""

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from services.notifications.domain.model import DeliveryStatus
from services.notifications.handlers import Context, apply_batch
from shared.messaging import events
from shared.messaging.events import CloudEvent, derived_event_id, new_event
from shared.messaging.outbox import CollectingSink
from tests.support.fakes.notifications import NOW, FakeNotifications, erased_event

WINDOW = timedelta(minutes=10)


@pytest.fixture
def notifications() -> FakeNotifications:
    return FakeNotifications()


async def apply_at(
    batch: Sequence[CloudEvent], notifications: FakeNotifications, *, minutes: float = 0
) -> None:
    await apply_batch(
        batch,
        Context(
            notifications=notifications,
            sink=CollectingSink(),
            now=NOW + timedelta(minutes=minutes),
            digest_window=WINDOW,
        ),
    )


def earned(customer_id: str = "c1", points: int = 10) -> CloudEvent:
    return new_event(
        events.PointsEarned(
            customer_id=customer_id,
            points=points,
            reason="purchase",
            available_at=NOW,
            expires_at=NOW + timedelta(days=365),
        ),
        source="points",
        subject=customer_id,
        time=NOW,
    )


def redeemed(customer_id: str = "c1") -> CloudEvent:
    return new_event(
        events.PointsRedeemed(
            customer_id=customer_id, points=500, redemption_id="r-1", reward="coffee"
        ),
        source="points",
        subject=customer_id,
        time=NOW,
    )


def expiring(customer_id: str = "c1") -> CloudEvent:
    return new_event(
        events.PointsExpiring(
            customer_id=customer_id, points=120, expires_at=NOW + timedelta(days=30)
        ),
        source="points",
        subject=customer_id,
        time=NOW,
    )


def downgrade_warning(customer_id: str = "c1") -> CloudEvent:
    return new_event(
        events.TierDowngradeWarning(
            customer_id=customer_id,
            tier="gold",
            would_become="silver",
            review_at=NOW + timedelta(days=30),
            amount_to_keep_tier=Decimal("125.50"),
        ),
        source="tiers",
        subject=customer_id,
        time=NOW,
    )


async def test_a_redemption_schedules_one_confirmation_with_points_and_reward(
    notifications: FakeNotifications,
) -> None:
    cause = redeemed()
    await apply_at([cause, cause], notifications)
    await apply_at([cause], notifications)
    delivery = notifications.only()
    assert delivery.template == "redemption_confirmed"
    assert delivery.params == {"points": 500, "reward": "coffee"}
    assert delivery.notification_id == derived_event_id(cause.id, "redemption_confirmed/email")
    assert delivery.next_attempt_at == NOW


async def test_points_expiring_schedules_a_warning_with_the_date(
    notifications: FakeNotifications,
) -> None:
    cause = expiring()
    await apply_at([cause], notifications)
    delivery = notifications.only()
    assert delivery.template == "points_expiring"
    assert delivery.params == {
        "points": 120,
        "expires_at": (NOW + timedelta(days=30)).isoformat(),
        "expires_on": (NOW + timedelta(days=30)).date().isoformat(),  # no profile yet: UTC
        "expires_until": (NOW + timedelta(days=30)).date().isoformat(),
        "warnings": 1,
        "warning_ids": [cause.id],
    }


async def test_a_downgrade_warning_schedules_one_with_the_amount_to_keep_the_tier(
    notifications: FakeNotifications,
) -> None:
    await apply_at([downgrade_warning()], notifications)
    delivery = notifications.only()
    assert delivery.template == "tier_downgrade_warning"
    assert delivery.params == {
        "tier": "gold",
        "would_become": "silver",
        "review_at": (NOW + timedelta(days=30)).isoformat(),
        "amount_to_keep_tier": "125.50",
        "currency": "EUR",  # the program's
    }


async def test_one_earning_opens_a_digest_that_waits_for_the_window(
    notifications: FakeNotifications,
) -> None:
    cause = earned(points=40)
    await apply_at([cause], notifications)
    digest = notifications.only()
    assert digest.template == "points_earned"
    assert digest.next_attempt_at == NOW + WINDOW
    assert digest.params == {"points": 40, "earnings": 1, "earning_ids": [cause.id]}


async def test_earnings_within_the_window_merge_into_one_digest_across_batches(
    notifications: FakeNotifications,
) -> None:
    first, second, third = earned(points=40), earned(points=15), earned(points=5)
    await apply_at([first, second], notifications)
    await apply_at([third], notifications, minutes=9)
    digest = notifications.only()
    assert digest.cause_event_id == first.id
    assert digest.params["points"] == 60
    assert digest.params["earnings"] == 3
    assert digest.next_attempt_at == NOW + WINDOW  # joining does not push the digest back


async def test_a_redelivered_earning_is_not_counted_twice(
    notifications: FakeNotifications,
) -> None:
    first, second = earned(points=40), earned(points=15)
    await apply_at([first, second], notifications)
    await apply_at([second], notifications, minutes=1)
    assert notifications.only().params["points"] == 55


async def test_an_earning_after_the_window_opens_a_new_digest(
    notifications: FakeNotifications,
) -> None:
    await apply_at([earned(points=40)], notifications)
    await apply_at([earned(points=7)], notifications, minutes=10)
    digests = sorted(notifications.deliveries.values(), key=lambda d: d.created_at)
    assert [d.params["points"] for d in digests] == [40, 7]
    assert digests[1].next_attempt_at == NOW + 2 * WINDOW


async def test_digests_are_per_customer(notifications: FakeNotifications) -> None:
    await apply_at([earned("c1", 10), earned("c2", 20), earned("c1", 30)], notifications)
    points = {d.customer_id: d.params["points"] for d in notifications.deliveries.values()}
    assert points == {"c1": 40, "c2": 20}


async def test_a_digest_already_attempted_is_not_joined(
    notifications: FakeNotifications,
) -> None:
    await apply_at([earned(points=40)], notifications)
    (digest,) = notifications.deliveries.values()
    notifications.deliveries[digest.notification_id] = replace(digest, attempts=1)
    await apply_at([earned(points=3)], notifications, minutes=1)
    assert len(notifications.deliveries) == 2


async def test_erasure_suppresses_the_open_digest_and_a_later_earning_starts_afresh(
    notifications: FakeNotifications,
) -> None:
    await apply_at([earned(points=40)], notifications)
    await apply_at([erased_event("c1"), earned(points=3)], notifications, minutes=1)
    by_points = {d.params["points"]: d.status for d in notifications.deliveries.values()}
    assert by_points == {40: DeliveryStatus.SUPPRESSED, 3: DeliveryStatus.SCHEDULED}


async def test_a_batch_of_earnings_costs_a_fixed_number_of_statements(
    notifications: FakeNotifications,
) -> None:
    await apply_at([earned(f"c{i % 7}", i + 1) for i in range(50)], notifications)
    await apply_at([earned(f"c{i % 7}", 1) for i in range(50)], notifications, minutes=1)
    # per batch: load the open digests, schedule, update the joined ones, upsert contacts
    assert notifications.statements <= 8
    assert len(notifications.deliveries) == 7
