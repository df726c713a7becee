"""Birthdays (product.md §8): a member's birthday is a month and a day (the profile's year is
not kept), celebrated once a year on that day in the member's own time zone. Pure Python: no
framework, no I/O, instants passed in (aware `datetime`).

- Whose birthday is it as of an instant: a member whose (month, day) is the local date of
  that instant in their time zone. A zone name this machine's time-zone database does not
  know counts as UTC: a member's data never stops the job.
- 29 February: celebrated on 29 February in a leap year and on 28 February in the others, so
  a member born that day has one birthday every year, like everyone else.
- The year it counts for is the local date's year: one reward per member and year, whatever
  the instant the job runs as of and however often it runs.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from services.engagement.domain.ids import derived_id
from services.engagement.domain.model import InvalidRule, Reward, check_tier, is_aware

# The rule every birthday reward names (there is one birthday reward, not a rule per member).
RULE_ID = "birthday"
NAME = "Happy birthday"
_LEAP = 2000  # a leap year: every (month, day) of a birthday is a date in it


@dataclass(frozen=True, order=True)
class Birthday:
    month: int
    day: int

    def __post_init__(self) -> None:
        try:
            date(_LEAP, self.month, self.day)
        except (TypeError, ValueError):
            raise InvalidRule("birthday", "must be a month and a day of the calendar") from None

    def celebrated_in(self, year: int) -> date:
        """The local date the birthday is celebrated on in `year` (29 February on the 28th
        when `year` is not a leap year)."""
        if (self.month, self.day) == (2, 29) and not calendar.isleap(year):
            return date(year, 2, 28)
        return date(year, self.month, self.day)


def birthday_of(born: date | None) -> Birthday | None:
    """The birthday a profile's date gives (its year dropped), None without one."""
    return None if born is None else Birthday(born.month, born.day)


def zone_of(name: str | None) -> tzinfo:
    """The time zone named so, or UTC when the name is missing or unknown here."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # unknown (a KeyError), malformed, unreadable
        return UTC


def local_date(at: datetime, zone: str | None) -> date:
    if not is_aware(at):
        raise ValueError("an instant must carry a time zone")
    return at.astimezone(zone_of(zone)).date()


def celebrated_on(day: date) -> list[Birthday]:
    """The birthdays celebrated on a local date: its own, and 29 February's on 28 February of
    a year that has none."""
    own = [Birthday(day.month, day.day)]
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        own.append(Birthday(2, 29))
    return own


def is_birthday(birthday: Birthday, at: datetime, zone: str | None) -> bool:
    """Whether `at` falls on the member's birthday in their time zone."""
    today = local_date(at, zone)
    return birthday.celebrated_in(today.year) == today


def year_counted(at: datetime, zone: str | None) -> int:
    """The year a birthday celebrated at `at` in `zone` counts for (its local year)."""
    return local_date(at, zone).year


def possible_birthdays(at: datetime) -> set[Birthday]:
    """Every birthday that is celebrated somewhere on Earth at `at`: local dates lie within a
    day of the UTC date (offsets run from -12:00 to +14:00)."""
    utc_day = at.astimezone(UTC).date()
    days = (utc_day + timedelta(days=delta) for delta in (-1, 0, 1))
    return {birthday for day in days for birthday in celebrated_on(day)}


@dataclass(frozen=True)
class Celebrated:
    """In time zone `zone` at the instant asked about, `birthday` is celebrated, for `year`."""

    zone: str
    birthday: Birthday
    year: int


def celebrated_at(at: datetime, zones: Iterable[str]) -> list[Celebrated]:
    """For each time zone named, the birthdays celebrated there at `at` and the year they
    count for (an unknown name as UTC), in a stable order."""
    found: list[Celebrated] = []
    for zone in sorted(set(zones)):
        today = local_date(at, zone)
        found.extend(Celebrated(zone, b, today.year) for b in celebrated_on(today))
    return found


def grant_id(customer_id: str, year: int) -> str:
    """The member's birthday reward of `year`: one id, so one grant, whatever reruns it."""
    return derived_id("birthday", customer_id, str(year))


@dataclass(frozen=True)
class BirthdayReward:
    """What a program manager gives members on their birthday, to those of at least
    `min_tier` (None: every member)."""

    reward: Reward
    min_tier: str | None = None

    def __post_init__(self) -> None:
        check_tier("min_tier", self.min_tier)
