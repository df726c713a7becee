"""The storage the insights handlers, use cases and jobs use: the SQL adapters and the unit
tests' fakes (tests/support/fakes/insights.py) both implement these."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from services.insights.domain.model import Breakpoints, MemberFacts, Rules
from services.insights.domain.segments import Change, CustomSegment


@dataclass(frozen=True)
class Profile:
    customer_id: str
    partner_id: str
    enrolled_at: datetime
    referred_by: str | None
    version: int | None


@dataclass(frozen=True)
class TierFact:
    customer_id: str
    effective_at: datetime
    tier: str


@dataclass(frozen=True)
class PurchaseFact:
    purchase_key: str
    customer_id: str
    purchase_id: str
    partner_id: str
    store_id: str | None
    occurred_at: datetime
    total: Decimal


@dataclass(frozen=True)
class RefundFact:
    refund_key: str
    purchase_key: str
    customer_id: str
    amount: Decimal
    occurred_at: datetime


@dataclass(frozen=True)
class CampaignPurchase:
    """A purchase points applied a campaign or a personal offer to."""

    customer_id: str
    purchase_id: str


@dataclass(frozen=True)
class Movement:
    """Points in (+) or out (-) of a member's balance, one per event."""

    event_id: str
    customer_id: str
    kind: str  # earned, imported, redeemed, reversed, expired, adjusted
    points: int
    occurred_at: datetime


@dataclass(frozen=True)
class Perk:
    perk_key: str
    customer_id: str
    kind: str
    used_at: datetime


@dataclass(frozen=True)
class Revocation:
    perk_key: str
    customer_id: str
    revoked_at: datetime


@dataclass(frozen=True)
class FeedbackFact:
    feedback_key: str
    customer_id: str
    partner_id: str
    kind: str
    score: int | None
    given_at: datetime


@dataclass
class Facts:
    """What one batch of events adds to what insights knows."""

    profiles: list[Profile]
    tiers: list[TierFact]
    purchases: list[PurchaseFact]
    refunds: list[RefundFact]
    campaign_purchases: list[CampaignPurchase]
    movements: list[Movement]
    perks: list[Perk]
    revocations: list[Revocation]
    feedback: list[FeedbackFact]


class FactsReader(Protocol):
    async def facts_of(
        self, customer_ids: Sequence[str], as_of: datetime, rules: Rules
    ) -> dict[str, MemberFacts]:
        """Each member's facts as of the instant (nothing after it), for members insights
        knows; the points, perks and feedback of the window before it."""

    async def breakpoints(self) -> Breakpoints | None: ...

    async def custom_segments(self) -> list[CustomSegment]: ...


class SegmentWriter(FactsReader, Protocol):
    async def lock_members(self, customer_ids: Sequence[str]) -> None:
        """Makes a row for each member not known yet and locks them all, in id order (the
        consumer and the job re-evaluate a member only under this lock)."""

    async def segments_of(self, customer_ids: Collection[str]) -> dict[str, set[str]]: ...

    async def apply_changes(self, changes: Sequence[Change], at: datetime) -> None: ...


class ConsumerRepository(SegmentWriter, Protocol):
    async def erased_among(self, customer_ids: Collection[str]) -> set[str]: ...

    async def record(self, facts: Facts) -> None:
        """Adds the facts, each once (a fact already kept is passed over; a profile only
        when newer than the one kept)."""

    async def erase(self, erased: Mapping[str, datetime]) -> None:
        """Deletes every row of the members and remembers they were erased."""


class JobRepository(SegmentWriter, Protocol):
    async def compute_breakpoints(self, as_of: datetime, window: timedelta) -> Breakpoints:
        """The quintiles of the members who bought in the window, computed in the database
        and kept for the reads and the consumer."""

    async def member_ids_after(self, after: str, limit: int) -> list[str]: ...
