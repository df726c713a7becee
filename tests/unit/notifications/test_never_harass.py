"""Never harass: quiet hours in the customer's time zone (across midnight and DST), the
daily cap, and the preferences beside the consent; then the dispatcher applying them."""

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.notifications.dispatcher import DeliveryDispatcher
from services.notifications.domain.model import (
    NO_CONSENT,
    OPTED_OUT,
    Channel,
    Contact,
    Delivery,
    DeliveryPolicy,
    DeliveryStatus,
    HarassmentPolicy,
    Hold,
    Preferences,
    QuietHours,
    Send,
    Suppress,
    Wait,
    decide,
    local_day,
    quiet_hours_end,
    schedule,
)
from shared.clock import FixedClock
from shared.messaging.outbox import CollectingSink
from tests.support.fakes.notifications import FakeNotifications, FakeSender, FakeUnits

ROME = ZoneInfo("Europe/Rome")
NIGHT = QuietHours(start=time(21, 0), end=time(8, 0))
POLICY = DeliveryPolicy()
HARASSMENT = HarassmentPolicy(quiet_hours=NIGHT, daily_cap=3)


def rome(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ROME)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def welcome(now: datetime, notification_id: str = "n1") -> Delivery:
    return schedule(
        notification_id=notification_id,
        customer_id="c1",
        channel=Channel.EMAIL,
        template="welcome",
        cause_event_id=f"cause-{notification_id}",
        now=now,
    )


def contact(time_zone: str = "Europe/Rome", **changes: object) -> Contact:
    base = Contact(
        customer_id="c1",
        locale="it",
        time_zone=time_zone,
        updated_at=utc(2026, 1, 1),
        email="ada@example.com",
        consent_email=True,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def judge(now: datetime, *, sent_today: int = 0, **kwargs: object) -> object:
    return decide(
        welcome(now),
        kwargs.pop("who", contact()),  # type: ignore[arg-type]
        now,
        POLICY,
        harassment=HARASSMENT,
        sent_today=sent_today,
        **kwargs,  # type: ignore[arg-type]
    )


# Quiet hours


def test_late_evening_waits_for_the_next_morning_across_midnight() -> None:
    assert quiet_hours_end(rome(2026, 6, 10, 22, 30), NIGHT, ROME) == rome(2026, 6, 11, 8, 0)


def test_small_hours_wait_for_the_same_morning() -> None:
    assert quiet_hours_end(rome(2026, 6, 11, 3, 0), NIGHT, ROME) == rome(2026, 6, 11, 8, 0)


@pytest.mark.parametrize("wall", [time(8, 0), time(12, 0), time(20, 59)])
def test_daytime_is_not_quiet(wall: time) -> None:
    now = datetime.combine(date(2026, 6, 11), wall, tzinfo=ROME)
    assert quiet_hours_end(now, NIGHT, ROME) is None


def test_the_window_starts_at_its_start() -> None:
    assert quiet_hours_end(rome(2026, 6, 10, 21, 0), NIGHT, ROME) == rome(2026, 6, 11, 8, 0)


def test_a_window_within_one_day_and_an_empty_window() -> None:
    lunch = QuietHours(start=time(13, 0), end=time(14, 0))
    assert quiet_hours_end(rome(2026, 6, 10, 13, 30), lunch, ROME) == rome(2026, 6, 10, 14, 0)
    assert quiet_hours_end(rome(2026, 6, 10, 14, 0), lunch, ROME) is None
    never = QuietHours(start=time(9, 0), end=time(9, 0))
    assert quiet_hours_end(rome(2026, 6, 10, 9, 0), never, ROME) is None


def test_the_spring_forward_night_is_an_hour_shorter() -> None:
    # Europe/Rome moves from 02:00 CET to 03:00 CEST on Sunday 29 March 2026.
    evening = utc(2026, 3, 28, 21, 0)  # 22:00 CET
    end = quiet_hours_end(evening, NIGHT, ROME)
    assert end == utc(2026, 3, 29, 6, 0)  # 08:00 CEST
    assert end - evening == timedelta(hours=9)


def test_the_fall_back_night_is_an_hour_longer() -> None:
    # Europe/Rome moves from 03:00 CEST back to 02:00 CET on Sunday 25 October 2026.
    evening = utc(2026, 10, 24, 20, 0)  # 22:00 CEST
    end = quiet_hours_end(evening, NIGHT, ROME)
    assert end == utc(2026, 10, 25, 7, 0)  # 08:00 CET
    assert end - evening == timedelta(hours=11)


def test_an_end_skipped_by_the_spring_gap_resolves_after_the_gap() -> None:
    until_half_past_two = QuietHours(start=time(22, 0), end=time(2, 30))
    now = utc(2026, 3, 28, 23, 30)  # 00:30 CET; 02:30 does not happen that night
    end = quiet_hours_end(now, until_half_past_two, ROME)
    assert end == utc(2026, 3, 29, 1, 30)  # 03:30 CEST, just after the gap
    assert end is not None and end > now


def test_during_the_repeated_autumn_hour_it_is_still_quiet() -> None:
    second_two_oclock = utc(2026, 10, 25, 1, 15)  # 02:15 CET, the second time round
    assert quiet_hours_end(second_two_oclock, NIGHT, ROME) == utc(2026, 10, 25, 7, 0)


def test_quiet_hours_are_the_customers_not_utcs() -> None:
    now = utc(2026, 6, 10, 12, 0)  # noon in UTC, 22:00 in Sydney
    sydney = ZoneInfo("Australia/Sydney")
    assert quiet_hours_end(now, NIGHT, ROME) is None
    assert quiet_hours_end(now, NIGHT, sydney) == datetime(2026, 6, 11, 8, 0, tzinfo=sydney)


# The customer's day


def test_dst_days_are_23_and_25_hours_long() -> None:
    spring_start, spring_end = local_day(utc(2026, 3, 29, 12, 0), ROME)
    autumn_start, autumn_end = local_day(utc(2026, 10, 25, 12, 0), ROME)
    assert (spring_start, spring_end - spring_start) == (
        utc(2026, 3, 28, 23, 0),
        timedelta(hours=23),
    )
    assert (autumn_start, autumn_end - autumn_start) == (
        utc(2026, 10, 24, 22, 0),
        timedelta(hours=25),
    )


# Decisions


def test_a_message_due_in_quiet_hours_waits_for_their_end() -> None:
    assert judge(rome(2026, 6, 10, 23, 0)) == Wait(rome(2026, 6, 11, 8, 0), Hold.QUIET_HOURS)


def test_a_message_due_in_the_day_goes_out() -> None:
    assert judge(rome(2026, 6, 10, 10, 0), sent_today=2) == Send("ada@example.com", "it")


def test_the_fourth_message_of_a_day_waits_for_the_next_day() -> None:
    decision = judge(rome(2026, 6, 10, 10, 0), sent_today=3)
    assert decision == Wait(rome(2026, 6, 11, 0, 0), Hold.FREQUENCY_CAP)


def test_the_cap_counts_the_customers_day_on_the_fall_back_sunday() -> None:
    decision = judge(utc(2026, 10, 25, 15, 0), sent_today=3)
    assert decision == Wait(utc(2026, 10, 25, 23, 0), Hold.FREQUENCY_CAP)  # midnight CET


def test_quiet_hours_decide_before_the_cap() -> None:
    decision = judge(rome(2026, 6, 10, 23, 0), sent_today=5)
    assert decision == Wait(rome(2026, 6, 11, 8, 0), Hold.QUIET_HOURS)


def test_a_configured_cap_holds() -> None:
    one_a_day = HarassmentPolicy(quiet_hours=NIGHT, daily_cap=1)
    now = rome(2026, 6, 10, 10, 0)
    decision = decide(welcome(now), contact(), now, POLICY, harassment=one_a_day, sent_today=1)
    assert decision == Wait(rome(2026, 6, 11, 0, 0), Hold.FREQUENCY_CAP)


def preferences(**changes: object) -> Preferences:
    return replace(Preferences(customer_id="c1", updated_at=utc(2026, 1, 1)), **changes)  # type: ignore[arg-type]


def test_email_turned_off_suppresses_even_with_consent() -> None:
    decision = judge(rome(2026, 6, 10, 10, 0), preferences=preferences(email=False))
    assert decision == Suppress(OPTED_OUT)


def test_the_preference_never_replaces_the_consent() -> None:
    decision = judge(
        rome(2026, 6, 10, 10, 0),
        preferences=preferences(email=True),
        who=contact(consent_email=False),
    )
    assert decision == Suppress(NO_CONSENT)


def test_the_customers_quiet_hours_time_zone_and_locale_replace_the_defaults() -> None:
    early_bird = preferences(
        quiet_hours=QuietHours(start=time(19, 0), end=time(6, 0)),
        time_zone="Europe/Helsinki",
        locale="fi",
    )
    helsinki = ZoneInfo("Europe/Helsinki")
    evening = datetime(2026, 6, 10, 19, 30, tzinfo=helsinki)  # 18:30 in Rome
    assert judge(evening, preferences=early_bird) == Wait(
        datetime(2026, 6, 11, 6, 0, tzinfo=helsinki), Hold.QUIET_HOURS
    )
    morning = datetime(2026, 6, 11, 7, 0, tzinfo=helsinki)  # 06:00 in Rome: quiet there
    assert judge(morning, preferences=early_bird) == Send("ada@example.com", "fi")


def test_an_unknown_time_zone_falls_back_to_utc() -> None:
    decision = judge(utc(2026, 6, 10, 22, 0), who=contact(time_zone="Mars/Olympus"))
    assert decision == Wait(utc(2026, 6, 11, 8, 0), Hold.QUIET_HOURS)


# The dispatcher


class Harness:
    def __init__(self, now: datetime) -> None:
        self.clock = FixedClock(now)
        self.notifications = FakeNotifications()
        self.notifications.contacts["c1"] = contact()
        self.sender = FakeSender()
        self.dispatcher = DeliveryDispatcher(
            transactions=FakeUnits(self.notifications, CollectingSink()),
            sender=self.sender,
            clock=self.clock,
            harassment=HARASSMENT,
        )

    def add(self, delivery: Delivery) -> None:
        self.notifications.deliveries[delivery.notification_id] = delivery


async def test_the_dispatcher_holds_a_message_due_in_quiet_hours() -> None:
    night = rome(2026, 6, 10, 23, 0)
    harness = Harness(night)
    harness.add(welcome(night))

    await harness.dispatcher.dispatch_due()

    held = harness.notifications.only()
    assert harness.sender.sent == []
    assert (held.status, held.hold, held.next_attempt_at, held.attempts) == (
        DeliveryStatus.SCHEDULED,
        Hold.QUIET_HOURS,
        rome(2026, 6, 11, 8, 0),
        0,
    )
    assert await harness.dispatcher.dispatch_due() == 0  # not due again before the morning

    harness.clock.set(rome(2026, 6, 11, 8, 0))
    await harness.dispatcher.dispatch_due()
    assert len(harness.sender.sent) == 1
    assert harness.notifications.only().status is DeliveryStatus.SENT


async def test_the_dispatcher_sends_three_a_day_and_holds_the_fourth() -> None:
    morning = rome(2026, 6, 10, 10, 0)
    harness = Harness(morning)
    for number in range(4):
        harness.add(welcome(morning - timedelta(seconds=4 - number), f"n{number}"))

    await harness.dispatcher.dispatch_due()

    assert len(harness.sender.sent) == 3
    fourth = harness.notifications.deliveries["n3"]
    assert (fourth.status, fourth.hold, fourth.next_attempt_at) == (
        DeliveryStatus.SCHEDULED,
        Hold.FREQUENCY_CAP,
        rome(2026, 6, 11, 0, 0),
    )


async def test_a_released_message_is_judged_as_of_its_release() -> None:
    night = rome(2026, 6, 10, 23, 0)
    harness = Harness(night)
    harness.add(replace(welcome(night), released_as_of=rome(2026, 6, 11, 8, 30)))

    await harness.dispatcher.dispatch_due()

    assert len(harness.sender.sent) == 1
