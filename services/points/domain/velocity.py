"""The velocity guard: a ceiling of purchase points per customer per day; what a purchase
earns above it is held for review, not granted silently. Pure Python: no I/O.

Days are the program's days (its `time_zone`, UTC unless set) of the purchases'
`occurred_at`, so a replay splits the same way. A day is given by the UTC instant it starts
at; in a zone with daylight saving it may last 23 or 25 hours.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, tzinfo

from services.points.domain.model import EntryKind, LedgerEntry


def day_of(instant: datetime, zone: tzinfo = UTC) -> datetime:
    """The start, as a UTC instant, of the day in `zone` that `instant` falls in."""
    local = instant.astimezone(zone)
    return datetime(local.year, local.month, local.day, tzinfo=zone).astimezone(UTC)


def next_day(day: datetime, zone: tzinfo = UTC) -> datetime:
    """The start of the day in `zone` after the one starting at `day`."""
    following = day.astimezone(zone).date() + timedelta(days=1)
    return datetime(following.year, following.month, following.day, tzinfo=zone).astimezone(UTC)


def held_id(entry_id: str) -> str:
    return f"held:{entry_id}"


def released_id(held_entry_id: str) -> str:
    return f"released:{held_entry_id}"


def cap(
    earning: LedgerEntry, earned_that_day: int, ceiling: int
) -> tuple[LedgerEntry | None, LedgerEntry | None]:
    """The earning split into what is granted (None: nothing) and what is held (None:
    nothing), given the points the customer earned that day before it."""
    if ceiling <= 0 or earned_that_day + earning.points <= ceiling:
        return earning, None
    granted = max(ceiling - earned_that_day, 0)
    held = replace(
        earning,
        entry_id=held_id(earning.entry_id),
        kind=EntryKind.HELD,
        points=earning.points - granted,
        reason="held for review: daily ceiling",
    )
    return (replace(earning, points=granted) if granted else None), held


def released(held: LedgerEntry, *, now: datetime, taken_back: int = 0) -> LedgerEntry | None:
    """The lot a held earning becomes when staff release it: what refunds of the purchase
    did not take back of it (None: nothing is left)."""
    if held.points - taken_back <= 0:
        return None
    return replace(
        held,
        entry_id=released_id(held.entry_id),
        points=held.points - taken_back,
        kind=EntryKind.EARN,
        reason="released after review",
        available_at=max(held.available_at, now),
    )
