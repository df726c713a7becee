"""The velocity guard: a ceiling of purchase points per customer per day; what a purchase
earns above it is held for review, not granted silently. Pure Python: no I/O.

Days are UTC days of the purchases' `occurred_at`, so a replay splits the same way.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.points.domain.model import EntryKind, LedgerEntry


def day_of(instant: datetime) -> datetime:
    """The start of the UTC day `instant` falls in."""
    utc = instant.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, tzinfo=UTC)


def next_day(day: datetime) -> datetime:
    return day + timedelta(days=1)


def held_id(entry_id: str) -> str:
    return f"held:{entry_id}"


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


def released(held: LedgerEntry, *, now: datetime) -> LedgerEntry:
    """The lot a held earning becomes when staff release it."""
    return replace(
        held,
        entry_id=f"released:{held.entry_id}",
        kind=EntryKind.EARN,
        reason="released after review",
        available_at=max(held.available_at, now),
    )
