"""Birthdays: whose birthday it is as of an instant in their own time zone
(29 February on the 28th in other years, an unknown zone as UTC), once per member and year;
the handler keeping each member's birthday from their latest profile; and the job's chunk
granting the birthday reward once, on fakes."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.engagement.domain.birthdays import (
    NAME,
    RULE_ID,
    Birthday,
    BirthdayReward,
    Celebrated,
    birthday_of,
    celebrated_at,
    celebrated_on,
    grant_id,
    is_birthday,
    local_date,
    possible_birthdays,
    year_counted,
    zone_of,
)
from services.engagement.domain.model import InvalidRule, Reward
from services.engagement.handlers import BirthdayContext, Context, apply_batch, grant_birthdays
from services.engagement.ports import BirthdayGrant, Celebrant
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.birthdays import FakeBirthdays
from tests.support.fakes.engagement import FakeEngagement, Member

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
UNKNOWN = "Nowhere/Atlantis"
# From UTC-12 to UTC+14, with daylight saving on either side of the equator, a half- and a
# quarter-hour offset, and a name no time-zone database knows.
ZONES = (
    "UTC",
    "Etc/GMT+12",
    "Pacific/Kiritimati",
    "Pacific/Apia",
    "America/Los_Angeles",
    "America/St_Johns",
    "Europe/Rome",
    "Europe/Helsinki",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    UNKNOWN,
)

birthdays = st.dates(date(2000, 1, 1), date(2000, 12, 31)).map(lambda d: Birthday(d.month, d.day))
zones = st.sampled_from(ZONES)
instants = st.datetimes(
    # hypothesis takes naive bounds and applies `timezones` itself
    min_value=datetime(2001, 1, 1),  # noqa: DTZ001
    max_value=datetime(2098, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)


def local_noon(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(12), tzinfo=zone_of(zone))


# --- The domain --------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(birthdays, st.integers(2001, 2098), zones)
def test_a_birthday_is_celebrated_on_exactly_one_local_date_a_year(
    birthday: Birthday, year: int, zone: str
) -> None:
    days = [
        date(year, 1, 1) + timedelta(days=n) for n in range(366 if calendar.isleap(year) else 365)
    ]
    celebrated = [d for d in days if is_birthday(birthday, local_noon(d, zone), zone)]
    assert celebrated == [birthday.celebrated_in(year)]
    assert year_counted(local_noon(celebrated[0], zone), zone) == year


@settings(max_examples=200, deadline=None)
@given(birthdays, instants, zones)
def test_every_instant_of_the_local_birthday_counts_for_its_local_year(
    birthday: Birthday, at: datetime, zone: str
) -> None:
    today = local_date(at, zone)
    assert is_birthday(birthday, at, zone) == (birthday in celebrated_on(today))
    assert year_counted(at, zone) == today.year
    # The job looks for members born on one of these days only: none is missed.
    assert set(celebrated_on(today)) <= possible_birthdays(at)
    found = {(c.zone, c.birthday, c.year) for c in celebrated_at(at, [zone])}
    assert ((zone, birthday, today.year) in found) == is_birthday(birthday, at, zone)


@settings(max_examples=50, deadline=None)
@given(birthdays, st.integers(2001, 2097), zones)
def test_hour_by_hour_through_a_year_each_year_is_counted_on_one_local_date(
    birthday: Birthday, year: int, zone: str
) -> None:
    start = datetime(year, 1, 1, tzinfo=UTC) - timedelta(days=1)
    hours = (start + timedelta(hours=h) for h in range(24 * 368))
    counted: dict[int, set[date]] = {}
    for at in hours:
        if is_birthday(birthday, at, zone):
            counted.setdefault(year_counted(at, zone), set()).add(local_date(at, zone))
    for days in counted.values():
        assert len(days) == 1
    assert year in counted


def test_29_february_is_celebrated_on_the_28th_in_other_years() -> None:
    leap_day = Birthday(2, 29)
    assert leap_day.celebrated_in(2027) == date(2027, 2, 28)
    assert leap_day.celebrated_in(2028) == date(2028, 2, 29)
    assert is_birthday(leap_day, datetime(2027, 2, 28, 12, tzinfo=UTC), "UTC")
    assert not is_birthday(leap_day, datetime(2028, 2, 28, 12, tzinfo=UTC), "UTC")
    assert celebrated_on(date(2027, 2, 28)) == [Birthday(2, 28), leap_day]
    assert celebrated_on(date(2028, 2, 28)) == [Birthday(2, 28)]


def test_the_birthday_is_the_local_date_in_the_members_zone() -> None:
    # 23:30 UTC on 5 December is already 6 December in Rome, still the 5th in Los Angeles.
    at = datetime(2026, 12, 5, 23, 30, tzinfo=UTC)
    sixth, fifth = Birthday(12, 6), Birthday(12, 5)
    assert is_birthday(sixth, at, "Europe/Rome") and not is_birthday(fifth, at, "Europe/Rome")
    assert is_birthday(fifth, at, "America/Los_Angeles")
    assert is_birthday(fifth, at, "UTC")


@pytest.mark.parametrize("name", [UNKNOWN, "", "../etc/passwd", "Europe", "a\x00b", None])
def test_an_unknown_zone_counts_as_utc(name: str | None) -> None:
    assert zone_of(name) is UTC
    at = datetime(2026, 12, 5, 23, 30, tzinfo=UTC)
    assert local_date(at, name) == date(2026, 12, 5)


def test_a_birthday_keeps_month_and_day_only_and_must_be_a_calendar_day() -> None:
    assert birthday_of(date(1990, 4, 23)) == Birthday(4, 23)
    assert birthday_of(None) is None
    for month, day in ((2, 30), (13, 1), (0, 1), (4, 31)):
        with pytest.raises(InvalidRule, match="birthday"):
            Birthday(month, day)
    with pytest.raises(InvalidRule, match="min_tier"):
        BirthdayReward(Reward(points=10), min_tier="diamond")


def test_a_grant_id_names_one_member_and_one_year() -> None:
    assert grant_id("anna", 2026) == grant_id("anna", 2026)
    assert len({grant_id("anna", 2026), grant_id("anna", 2027), grant_id("bo", 2026)}) == 3


# --- The handler: birthdays from the latest profile ----------------------------------------


async def apply(repository: FakeEngagement, *batch: CloudEvent) -> None:
    await apply_batch(list(batch), Context(repository, CollectingSink(), NOW))


def member(repository: FakeEngagement, customer_id: str = "c1") -> Member:
    return repository.members[customer_id]


async def test_a_profile_gives_the_birthday_without_its_year_and_the_time_zone() -> None:
    repository = FakeEngagement()
    enrolled = factories.enrolment(
        "c1", at=NOW, birthday=date(1990, 4, 23), time_zone="Europe/Rome", version=1
    )
    await apply(repository, enrolled, factories.enrolment("c2", at=NOW))
    assert (member(repository).birthday, member(repository).time_zone) == (
        Birthday(4, 23),
        "Europe/Rome",
    )
    assert (member(repository, "c2").birthday, member(repository, "c2").time_zone) == (
        None,
        "UTC",
    )
    assert repository.calls.count("note_birthdays") == 1


async def test_the_latest_profile_wins_and_one_without_a_birthday_clears_it() -> None:
    repository = FakeEngagement()
    first = factories.enrolment("c1", at=NOW, birthday=date(1990, 4, 23), version=1)
    moved = factories.profile_update(
        "c1", at=NOW, birthday=date(1990, 5, 1), time_zone="Asia/Tokyo", version=3
    )
    older = factories.profile_update("c1", at=NOW, birthday=date(1990, 6, 1), version=2)
    # In one batch, out of order: the latest version is kept.
    await apply(repository, first, moved, older)
    assert (member(repository).birthday, member(repository).time_zone) == (
        Birthday(5, 1),
        "Asia/Tokyo",
    )
    # In a later batch, an older version changes nothing; a newer one without a birthday
    # clears it.
    await apply(repository, older)
    assert member(repository).birthday == Birthday(5, 1)
    await apply(repository, factories.profile_update("c1", at=NOW, version=4))
    assert (member(repository).birthday, member(repository).profile_version) == (None, 4)


async def test_an_erased_member_loses_the_birthday() -> None:
    repository = FakeEngagement()
    await apply(repository, factories.enrolment("c1", at=NOW, birthday=date(1990, 4, 23)))
    await apply(repository, factories.erasure("c1", at=NOW))
    assert "c1" not in repository.members


# --- The job's chunk ------------------------------------------------------------------------


def born(day: date, zone: str = "UTC", tier: str | None = None) -> Member:
    return Member(birthday=Birthday(day.month, day.day), time_zone=zone, tier=tier)


async def grant(
    repository: FakeBirthdays,
    reward: BirthdayReward,
    at: datetime,
    *,
    after: str = "",
    limit: int = 100,
) -> tuple[list[CloudEvent], int, str | None]:
    sink = CollectingSink()
    celebrated = celebrated_at(at, await repository.zones_celebrating(possible_birthdays(at)))
    context = BirthdayContext(repository, sink, NOW)
    done = await grant_birthdays(reward, celebrated, at, after, limit, context)
    for topic, key, event in sink.events:
        assert (topic, key) == (topics.ENGAGEMENT, event.subject)
    return [event for _, _, event in sink.events], done.members, done.last_customer_id


async def test_the_reward_goes_once_a_year_to_the_members_whose_birthday_it_is_locally() -> None:
    at = datetime(2026, 12, 5, 23, 30, tzinfo=UTC)  # the 6th in Rome, the 5th in UTC
    repository = FakeBirthdays(
        members={
            "rome": born(date(1990, 12, 6), "Europe/Rome"),
            "utc": born(date(1985, 12, 5)),
            "nowhere": born(date(1985, 12, 5), UNKNOWN),  # as UTC
            "tomorrow": born(date(1990, 12, 6)),  # the 6th in UTC: not yet
            "la-tomorrow": born(date(1990, 12, 6), "America/Los_Angeles"),
        }
    )
    reward = BirthdayReward(Reward(points=100))
    emitted, members, _ = await grant(repository, reward, at)
    assert members == 3
    granted = [events.EngagementRewarded.model_validate(e.data) for e in emitted]
    assert {g.customer_id for g in granted} == {"rome", "utc", "nowhere"}
    for g in granted:
        assert (g.reason, g.rule_id, g.name, g.points, g.reward_id) == (
            "birthday",
            RULE_ID,
            NAME,
            100,
            None,
        )
        assert (g.purchase_id, g.granted_at, g.grant_id) == (
            None,
            at,
            grant_id(g.customer_id, 2026),
        )
    assert {e.type for e in emitted} == {events.ENGAGEMENT_REWARDED}

    # Again as of the same instant, or later that day: nothing more.
    assert (await grant(repository, reward, at))[:2] == ([], 0)
    assert (await grant(repository, reward, at + timedelta(minutes=20)))[0] == []
    # Half a day on, it is the 6th in UTC and Los Angeles too: their members' turn, only.
    later, _, _ = await grant(repository, reward, at + timedelta(hours=12))
    assert {e.subject for e in later} == {"tomorrow", "la-tomorrow"}
    # The next year, again.
    next_year, members, _ = await grant(repository, reward, at.replace(year=2027))
    assert {e.subject for e in next_year} == {"rome", "utc", "nowhere"}


async def test_a_reward_for_a_min_tier_skips_the_members_below_it() -> None:
    at = datetime(2026, 12, 6, 12, tzinfo=UTC)
    day = date(1990, 12, 6)
    repository = FakeBirthdays(
        members={
            "gold": born(day, tier="gold"),
            "bronze": born(day),
            "silver": born(day, tier="silver"),
        }
    )
    reward = BirthdayReward(Reward(reward_id="birthday-cake"), min_tier="silver")
    emitted, members, _ = await grant(repository, reward, at)
    assert members == 3
    assert sorted(e.subject or "" for e in emitted) == ["gold", "silver"]
    assert {e.data["reward_id"] for e in emitted} == {"birthday-cake"}


async def test_chunks_go_on_after_the_last_member_of_the_one_before() -> None:
    at = datetime(2026, 12, 6, 12, tzinfo=UTC)
    repository = FakeBirthdays(members={f"m{i}": born(date(1990, 12, 6)) for i in range(5)})
    reward = BirthdayReward(Reward(points=5))
    first, members, last = await grant(repository, reward, at, limit=2)
    assert (members, last, [e.subject for e in first]) == (2, "m1", ["m0", "m1"])
    rest, members, last = await grant(repository, reward, at, after="m1", limit=10)
    assert (members, last, [e.subject for e in rest]) == (3, "m4", ["m2", "m3", "m4"])
    assert (await grant(repository, reward, at, limit=10))[1:] == (0, None)


class RacedBirthdays(FakeBirthdays):
    """Another run records the grants right after this one read its celebrants."""

    async def celebrants(
        self, celebrated: Sequence[Celebrated], after: str, limit: int
    ) -> list[Celebrant]:
        found = await super().celebrants(celebrated, after, limit)
        at = datetime(2026, 12, 6, tzinfo=UTC)
        await self.record_grants(
            [BirthdayGrant(c.customer_id, c.year, grant_id(c.customer_id, c.year)) for c in found],
            at,
        )
        return found


async def test_a_grant_recorded_meanwhile_is_not_granted_again() -> None:
    at = datetime(2026, 12, 6, 12, tzinfo=UTC)
    repository = RacedBirthdays(members={"c1": born(date(1990, 12, 6))})
    celebrated = [Celebrated("UTC", Birthday(12, 6), 2026)]
    sink = CollectingSink()
    context = BirthdayContext(repository, sink, NOW)
    done = await grant_birthdays(BirthdayReward(Reward(points=5)), celebrated, at, "", 10, context)
    assert (done.members, done.rewards) == (1, 0)
    assert sink.events == []
