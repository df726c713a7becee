"""Qualifying activity summed per member and day, so that deciding a purchase reads a bounded
number of rows however long the member's history (issue 24). Pure: no I/O, time passed in.

The database keeps one bucket per member, UTC day the activity occurred on and UTC day its
spend was made (a refund's purchase's day; the same day for everything else), with the sums
and the first and last instants of what it holds (`migrations/versions/0009`). The buckets
hold no program: the program in force reads them (a replay may switch to another basis,
window or time zone without rebuilding them). It keeps the same sums per UTC calendar month
too, which its statement takes whole where no cut falls in the month: what it answers is
`merged` of the day buckets, row for row (`repositories/common.buckets_since`).

A bucket may stand in for its activities as ONE activity (`summarise`) exactly when every
instant the rules look at leaves all its activities on the same side: the window's end `q`
and start `q - window` under the rolling basis, `q` and the year its spend belongs to under
the calendar-year basis. A bucket an instant cuts is read activity by activity instead: the
answer is then the one the activities themselves give, to the cent."""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple
from zoneinfo import ZoneInfo

from services.tiers.domain.model import Program, QualifyingActivity, SpendBasis


class BucketKey(NamedTuple):
    customer_id: str
    day: date  # the UTC day the activity occurred on
    spent_day: date  # the UTC day its spend was made (a refund: its purchase's, when known)


@dataclass(frozen=True)
class ActivityBucket:
    """The sums of one member's activity of one day (and spend day), and the instants it
    spans."""

    key: BucketKey
    amount: Decimal
    visits: int
    referrals: int
    first_at: datetime  # the earliest and latest instant an activity of it occurred at
    last_at: datetime
    first_spent_at: datetime  # the earliest and latest instant its spend was made at
    last_spent_at: datetime


@dataclass(frozen=True)
class Summary:
    """One member's activity since an instant, as the rules may count it at given instants:
    each bucket no instant cuts as one activity (`activities`), and the buckets to read
    activity by activity (`to_read`)."""

    activities: list[QualifyingActivity]
    to_read: list[BucketKey]


def utc_day(instant: datetime) -> date:
    return instant.astimezone(UTC).date()


def bucket_key(activity: QualifyingActivity) -> BucketKey:
    return BucketKey(
        activity.customer_id, utc_day(activity.occurred_at), utc_day(activity.spent_at)
    )


def buckets_of(activities: Iterable[QualifyingActivity]) -> list[ActivityBucket]:
    """The buckets these activities make (what the database's trigger keeps), in key order."""
    found: dict[BucketKey, ActivityBucket] = {}
    for a in activities:
        key = bucket_key(a)
        known = found.get(key)
        if known is None:
            found[key] = ActivityBucket(
                key, a.amount, a.visits, a.referrals, a.occurred_at, a.occurred_at,
                a.spent_at, a.spent_at,
            )  # fmt: skip
            continue
        found[key] = ActivityBucket(
            key,
            known.amount + a.amount,
            known.visits + a.visits,
            known.referrals + a.referrals,
            min(known.first_at, a.occurred_at),
            max(known.last_at, a.occurred_at),
            min(known.first_spent_at, a.spent_at),
            max(known.last_spent_at, a.spent_at),
        )
    return [found[key] for key in sorted(found)]


@dataclass(frozen=True)
class Window:
    """What a member's standing is looked at for: their activity from `since` on, as of
    instants whose `cuts` (each instant and the start of its rolling window, sorted) no summed
    activity may straddle; with `checkpoints_after`, as of every activity after it too."""

    since: datetime
    cuts: tuple[datetime, ...]
    checkpoints_after: datetime | None = None


def window(
    program: Program,
    since: datetime,
    at: Collection[datetime],
    checkpoints_after: datetime | None = None,
) -> Window:
    """The window of a standing looked at as of each instant of `at` (and, with
    `checkpoints_after` (the earliest activity a batch brings), as of each recorded activity
    after it: `model.upgrade_for` looks at those when activity arrives late)."""
    length = timedelta(days=program.qualifying_window_days)
    return Window(since, tuple(sorted({*at, *(q - length for q in at)})), checkpoints_after)


def year_zone(program: Program) -> str | None:
    """The time zone whose calendar years buckets must not straddle (calendar-year basis)."""
    return program.time_zone if program.basis is SpendBasis.CALENDAR_YEAR else None


def merged(
    buckets: Iterable[ActivityBucket], window: Window, zone: str | None
) -> list[ActivityBucket]:
    """What the database answers for a window (`repositories/common.buckets_since`): the
    buckets from `since` on, those no cut divides summed per stretch between two cuts (and
    calendar year of `zone`), each other one as it is; every one as it is when activity
    recorded after `checkpoints_after` makes the whole history count."""
    kept = [b for b in buckets if b.last_at >= window.since]
    if window.checkpoints_after is not None and any(
        b.last_at > window.checkpoints_after for b in kept
    ):
        return kept
    alone: list[ActivityBucket] = []
    stretches: dict[tuple[int, int], list[ActivityBucket]] = {}
    for bucket in kept:
        first = bisect.bisect_left(window.cuts, bucket.first_at)
        last = bisect.bisect_left(window.cuts, bucket.last_at)
        first_year, last_year = (
            (_year(bucket.first_spent_at, zone), _year(bucket.last_spent_at, zone))
            if zone
            else (0, 0)
        )
        if first != last or bucket.first_at < window.since or first_year != last_year:
            alone.append(bucket)
        else:
            stretches.setdefault((first, first_year), []).append(bucket)
    return [*alone, *(_sum(found) for _, found in sorted(stretches.items()))]


def _year(instant: datetime, zone: str) -> int:
    return instant.astimezone(ZoneInfo(zone)).year


def _sum(buckets: Sequence[ActivityBucket]) -> ActivityBucket:
    first = min(b.key for b in buckets)
    return ActivityBucket(
        key=BucketKey(first.customer_id, first.day, min(b.key.spent_day for b in buckets)),
        amount=sum((b.amount for b in buckets), start=Decimal(0)),
        visits=sum(b.visits for b in buckets),
        referrals=sum(b.referrals for b in buckets),
        first_at=min(b.first_at for b in buckets),
        last_at=max(b.last_at for b in buckets),
        first_spent_at=min(b.first_spent_at for b in buckets),
        last_spent_at=max(b.last_spent_at for b in buckets),
    )


def summarise(program: Program, buckets: Iterable[ActivityBucket], window: Window) -> Summary:
    """A member's activity that occurred at or after the window's `since`, exact for the
    standing as of its instants: each bucket (or sum of buckets) no cut divides as one
    activity, the others to be read activity by activity (all of them when activity is
    recorded after `checkpoints_after`: `upgrade_for` then looks as of each of it)."""
    kept = [b for b in buckets if b.last_at >= window.since]
    after = window.checkpoints_after
    if after is not None and any(b.last_at > after for b in kept):
        return Summary([], [b.key for b in kept])
    activities: list[QualifyingActivity] = []
    to_read: list[BucketKey] = []
    for bucket in kept:
        if _cut(program, bucket, window):
            to_read.append(bucket.key)
        else:
            activities.append(as_activity(bucket))
    return Summary(activities, to_read)


def _cut(program: Program, bucket: ActivityBucket, window: Window) -> bool:
    """Whether the bucket holds activity on both sides of `since` (the first it counts), of
    a cut (counted up to and including it), or of a calendar year's start."""
    if bucket.first_at < window.since:
        return True
    # The first cut at or after the bucket's first instant: it cuts when before its last.
    n = bisect.bisect_left(window.cuts, bucket.first_at)
    if n < len(window.cuts) and window.cuts[n] < bucket.last_at:
        return True
    if program.basis is SpendBasis.CALENDAR_YEAR:
        return program.year_of(bucket.first_spent_at) != program.year_of(bucket.last_spent_at)
    return False


def as_activity(bucket: ActivityBucket) -> QualifyingActivity:
    """The bucket as one activity, at its last instant (and its spend at its last spend)."""
    key = bucket.key
    return QualifyingActivity(
        activity_id=f"bucket:{key.customer_id}:{key.day.isoformat()}:{key.spent_day.isoformat()}",
        customer_id=key.customer_id,
        amount=bucket.amount,
        occurred_at=bucket.last_at,
        attributed_at=bucket.last_spent_at,
        visits=bucket.visits,
        referrals=bucket.referrals,
    )
