"""Members brought over from another program (`fedelta import members`, product §11): what
an import row may hold beyond an enrolment's bounds, and which rows of a call go in.

Pure Python: the rows arrive already within the bounds of an enrolment's fields (the API's
request model checks those); the rules here need the clock, which is passed in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.ingest.domain.model import CustomerProfile, RuleViolation, ensure_birthday_in_range

# What an imported member's row holds in place of an enrolment's fingerprint: no request
# hashes to it (those are hex digests), so a POS enrolment of an imported id is refused as
# taken rather than answered as a retry.
IMPORTED_REQUEST_HASH = "imported"

Tier = Literal["bronze", "silver", "gold", "platinum"]
OutcomeKind = Literal["imported", "exists", "refused"]


@dataclass(frozen=True)
class ImportRow:
    """A row within the bounds: the member's profile and what they bring along."""

    line: int
    profile: CustomerProfile
    points: int = 0
    points_expire_at: datetime | None = None
    tier: Tier | None = None
    tier_since: datetime | None = None

    @property
    def customer_id(self) -> str:
        return self.profile.customer_id

    @property
    def has_opening(self) -> bool:
        """True when the member brings points or a tier: a `points.imported` event follows
        their enrolment."""
        return self.points > 0 or self.tier is not None


@dataclass(frozen=True)
class Refusal:
    line: int
    customer_id: str | None
    reason: str


def refusal(row: ImportRow, now: datetime) -> Refusal | None:
    """Why the row cannot go in as of `now`, naming the field; None when it can."""
    reason = _reason(row, now)
    return None if reason is None else Refusal(row.line, row.customer_id, reason)


def _reason(row: ImportRow, now: datetime) -> str | None:
    try:
        ensure_birthday_in_range(row.profile.birthday, now)
    except RuleViolation as violation:
        return str(violation)
    if row.points_expire_at is not None and row.points_expire_at <= now:
        return "points_expire_at: must be in the future (expired points are not imported)"
    if row.tier_since is not None and row.tier_since > now:
        return "tier_since: must not be in the future"
    if row.tier_since is not None and row.tier is None:
        return "tier_since: given without a tier"
    return None


def decide(rows: Iterable[ImportRow | Refusal], now: datetime) -> list[ImportRow | Refusal]:
    """Each row of a call, in order: kept, or refused by the rules or as a duplicate. A
    customer id met on an earlier row of the call (whatever became of that row) is refused
    with that row's line: which of the two the file meant cannot be told."""
    first_line: dict[str, int] = {}
    decided: list[ImportRow | Refusal] = []
    for row in rows:
        customer_id = row.customer_id
        seen = None if customer_id is None else first_line.get(customer_id)
        if customer_id is not None and seen is None:
            first_line[customer_id] = row.line
        if seen is not None:
            decided.append(
                Refusal(row.line, customer_id, f"duplicate in this file (first on line {seen})")
            )
        elif isinstance(row, ImportRow):
            decided.append(refusal(row, now) or row)
        else:
            decided.append(row)
    return decided


def kept(decided: Iterable[ImportRow | Refusal]) -> list[ImportRow]:
    return [row for row in decided if isinstance(row, ImportRow)]


@dataclass(frozen=True)
class Outcome:
    line: int
    customer_id: str | None
    outcome: OutcomeKind
    reason: str | None = None


def outcomes(decided: Iterable[ImportRow | Refusal], inserted: set[str]) -> list[Outcome]:
    """One outcome per row, in order: a kept row was imported when its customer was
    inserted, else the member already existed (and was left as they were)."""
    return [
        Outcome(row.line, row.customer_id, "refused", row.reason)
        if isinstance(row, Refusal)
        else Outcome(
            row.line, row.customer_id, "imported" if row.customer_id in inserted else "exists"
        )
        for row in decided
    ]
