"""Expiry warnings merged per customer and window of local days: points warns per lot, the
customer hears once per day (or window) with the total and the date, whatever the order,
batching and redelivery of the warnings."""

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.notifications.domain import templates
from services.notifications.domain.model import (
    DeliveryStatus,
    Hold,
    expiry_warning_send_at,
    expiry_window,
)
from services.notifications.handlers import Context, apply_batch
from shared.messaging import events
from shared.messaging.events import CloudEvent, new_event
from shared.messaging.outbox import CollectingSink
from tests.support.fakes.notifications import NOW, FakeNotifications

HELSINKI = ZoneInfo("Europe/Helsinki")
HOLD = timedelta(minutes=65)
# A day 30 days ahead, and instants in it in Helsinki's time (UTC+3 in summer, +2 in winter).
DAY = date(2026, 12, 22)


def helsinki(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=HELSINKI).astimezone(UTC)


@pytest.fixture
def notifications() -> FakeNotifications:
    return FakeNotifications()


def profile(customer_id: str = "c1", time_zone: str = "Europe/Helsinki") -> CloudEvent:
    return new_event(
        events.CustomerEnrolled(
            customer_id=customer_id,
            partner_id="demo",
            enrolled_at=NOW,
            locale="fi",
            time_zone=time_zone,
            email="ada@example.com",
            phone="+358401234567",
            consent=events.Consent(email=True, sms=True),
        ),
        source="ingest/demo",
        subject=customer_id,
        time=NOW,
    )


def warning(points: int, expires_at: datetime, customer_id: str = "c1") -> CloudEvent:
    return new_event(
        events.PointsExpiring(customer_id=customer_id, points=points, expires_at=expires_at),
        source="points",
        subject=customer_id,
        time=NOW,
    )


async def apply_at(
    batch: Sequence[CloudEvent],
    notifications: FakeNotifications,
    *,
    minutes: float = 0,
    window_days: int = 1,
) -> None:
    await apply_batch(
        batch,
        Context(
            notifications=notifications,
            sink=CollectingSink(),
            now=NOW + timedelta(minutes=minutes),
            expiry_window_days=window_days,
            expiry_hold=HOLD,
        ),
    )


def warnings_of(
    notifications: FakeNotifications, channel: str = "email"
) -> list[dict[str, object]]:
    return [
        d.params
        for d in notifications.deliveries.values()
        if d.template == "points_expiring" and d.channel.value == channel
    ]


async def test_lots_expiring_on_one_local_day_make_one_message_per_channel(
    notifications: FakeNotifications,
) -> None:
    await apply_at([profile()], notifications)
    first, second = warning(100, helsinki(DAY, 9)), warning(20, helsinki(DAY, 23, 30))
    await apply_at([first, second], notifications)
    merged = [d for d in notifications.deliveries.values() if d.template == "points_expiring"]
    assert sorted(d.channel.value for d in merged) == ["email", "sms"]
    # One cause for both channels: the daily cap counts the merged message once.
    assert {d.cause_event_id for d in merged} == {first.id}
    for delivery in merged:
        assert delivery.params == {
            "points": 120,
            "expires_at": helsinki(DAY, 9).isoformat(),
            "expires_on": "2026-12-22",
            "expires_until": "2026-12-22",
            "warnings": 2,
            "warning_ids": [first.id, second.id],
        }
        assert delivery.hold is Hold.DIGEST_WINDOW
        window_end = helsinki(DAY + timedelta(days=1), 0)
        assert delivery.next_attempt_at == NOW + (window_end - helsinki(DAY, 9)) + HOLD
    rendered = templates.render("points_expiring", "en", merged[0].params)
    assert rendered.subject == "120 points expire on December 22, 2026"


async def test_the_day_is_the_customers_own_not_utcs(notifications: FakeNotifications) -> None:
    await apply_at([profile()], notifications)
    # 23:30 and 00:30 in Helsinki are one UTC day (21:30, 22:30 UTC), two local days.
    late, after_midnight = helsinki(DAY, 23, 30), helsinki(DAY + timedelta(days=1), 0, 30)
    assert late.date() == after_midnight.date()
    await apply_at([warning(5, late), warning(7, after_midnight)], notifications)
    days = sorted((p["expires_on"], p["points"]) for p in warnings_of(notifications))
    assert days == [("2026-12-22", 5), ("2026-12-23", 7)]


async def test_a_warning_of_a_later_batch_joins_the_message_still_waiting(
    notifications: FakeNotifications,
) -> None:
    await apply_at([profile()], notifications)
    first, second = warning(100, helsinki(DAY, 9)), warning(20, helsinki(DAY, 15))
    await apply_at([first], notifications)
    await apply_at([second], notifications, minutes=60)
    await apply_at([second, first], notifications, minutes=61)  # redelivered: nothing added
    [params] = warnings_of(notifications)
    assert (params["points"], params["warnings"]) == (120, 2)


async def test_a_late_lot_is_not_told_again_once_the_window_s_message_went_out(
    notifications: FakeNotifications,
) -> None:
    await apply_at([profile()], notifications)
    await apply_at([warning(100, helsinki(DAY, 9))], notifications)
    for delivery in list(notifications.deliveries.values()):
        if delivery.template == "points_expiring":
            notifications.deliveries[delivery.notification_id] = replace(
                delivery, status=DeliveryStatus.SENT, attempts=1, sent_at=NOW
            )
    before = dict(notifications.deliveries)
    await apply_at([warning(20, helsinki(DAY, 20))], notifications, minutes=600)
    assert notifications.deliveries == before


async def test_a_window_of_several_days_names_the_first_and_last_day(
    notifications: FakeNotifications,
) -> None:
    await apply_at([profile()], notifications)
    # 2026-12-21 is a Monday: a 7-day window is that calendar week.
    monday, sunday = date(2026, 12, 21), date(2026, 12, 27)
    batch = [warning(3, helsinki(sunday, 12)), warning(4, helsinki(monday, 8))]
    await apply_at(batch, notifications, window_days=7)
    [params] = warnings_of(notifications)
    assert (params["points"], params["expires_on"], params["expires_until"]) == (
        7,
        "2026-12-21",
        "2026-12-27",
    )
    rendered = templates.render("points_expiring", "pl", params)
    assert rendered.subject == "7 punktów wygasa między 21 grudnia 2026 a 27 grudnia 2026"
    assert expiry_window(helsinki(date(2026, 12, 28), 0, 1), HELSINKI, 7).first_day == date(
        2026, 12, 28
    )


def test_the_message_waits_for_the_window_but_never_past_half_way_to_the_expiry() -> None:
    expires_at = helsinki(DAY, 9)
    window = expiry_window(expires_at, HELSINKI)
    assert expiry_warning_send_at(NOW, expires_at, window, HOLD) == (
        NOW + timedelta(hours=15) + HOLD
    )
    soon = NOW + timedelta(hours=2)
    assert expiry_warning_send_at(NOW, soon, expiry_window(soon, HELSINKI), HOLD) == (
        NOW + timedelta(hours=1)
    )


async def test_an_erasure_in_the_batch_suppresses_the_merged_warning(
    notifications: FakeNotifications,
) -> None:
    await apply_at([profile()], notifications)
    await apply_at([warning(100, helsinki(DAY, 9))], notifications)
    erased = new_event(
        events.CustomerErased(customer_id="c1"), source="ingest/demo", subject="c1", time=NOW
    )
    await apply_at([warning(20, helsinki(DAY, 10)), erased], notifications, minutes=1)
    merged = [d for d in notifications.deliveries.values() if d.template == "points_expiring"]
    assert {d.status for d in merged} == {DeliveryStatus.SUPPRESSED}


@settings(max_examples=60, deadline=None)
@given(
    lots=st.lists(
        st.tuples(st.integers(1, 10_000), st.integers(0, 24 * 60 - 1)), min_size=1, max_size=6
    ),
    data=st.data(),
)
def test_the_total_is_the_sum_over_distinct_lots_whatever_the_order_and_duplication(
    lots: list[tuple[int, int]], data: st.DataObject
) -> None:
    start = helsinki(DAY, 0)
    warnings = [warning(points, start + timedelta(minutes=minute)) for points, minute in lots]
    deliveries = data.draw(
        st.lists(st.sampled_from(warnings), min_size=len(warnings), max_size=3 * len(warnings))
    )
    deliveries += [w for w in warnings if w not in deliveries]  # each lot arrives at least once
    order = data.draw(st.permutations(deliveries))
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(order) - 1)), max_size=3)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]

    async def run() -> FakeNotifications:
        notifications = FakeNotifications()
        await apply_at([profile()], notifications)
        for minute, batch in enumerate(batches):
            # The inbox hands a batch each event once; redelivery comes in later batches.
            unique = list({event.id: event for event in batch}.values())
            await apply_at(unique, notifications, minutes=minute)
        return notifications

    notifications = asyncio.run(run())
    for channel in ("email", "sms"):
        [params] = warnings_of(notifications, channel)
        assert params["points"] == sum(points for points, _ in lots)
        merged = params["warning_ids"]
        assert isinstance(merged, list)
        assert sorted(merged) == sorted(w.id for w in warnings)
        assert params["warnings"] == len(lots)
