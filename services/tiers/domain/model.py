"""The tier program's rules. Pure Python: no framework, no I/O, time passed in."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class DowngradePolicy(StrEnum):
    ONE_DOWN = "one_down"  # at review, one tier lower at most
    RECOMPUTE = "recompute"  # at review, straight to what the qualifying spend supports


class SpendBasis(StrEnum):
    ROLLING = "rolling"  # the last `qualifying_window_days` before the instant looked at
    # A calendar year's spend (years in the program's time zone) qualifies until the end of
    # the next year: the qualifying spend is the better of this year's so far and last year's.
    CALENDAR_YEAR = "calendar_year"


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"


QUALIFYING_SPEND = "qualifying_spend"
# A downgrade's reason: the review found the qualifying spend short of the tier.
REVIEW = "review"


@dataclass(frozen=True)
class TierDefinition:
    name: str
    threshold: Decimal  # qualifying spend, in the program currency, that reaches this tier


def _default_tiers() -> tuple[TierDefinition, ...]:
    return (
        TierDefinition("bronze", Decimal(0)),
        TierDefinition("silver", Decimal(500)),
        TierDefinition("gold", Decimal(2000)),
        TierDefinition("platinum", Decimal(5000)),
    )


@dataclass(frozen=True)
class Program:
    currency: str = "EUR"
    tiers: tuple[TierDefinition, ...] = field(default_factory=_default_tiers)
    basis: SpendBasis = SpendBasis.ROLLING
    qualifying_window_days: int = 365
    review_period_days: int = 365
    downgrade_policy: DowngradePolicy = DowngradePolicy.ONE_DOWN
    downgrade_warning_days: int = 30
    time_zone: str = "UTC"  # where the program's calendar years begin and end (IANA name)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"time_zone: unknown time zone {self.time_zone!r}") from error
        if not self.tiers:
            raise ValueError("a program needs at least one tier")
        names = [tier.name for tier in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be unique, got {names}")
        if self.tiers[0].threshold != 0:
            # Every customer must have a tier, whatever their spend.
            raise ValueError(f"the first tier must start at 0, {names[0]} starts elsewhere")
        thresholds = [tier.threshold for tier in self.tiers]
        if any(lower >= higher for lower, higher in pairwise(thresholds)):
            raise ValueError(f"tier thresholds must rise strictly in tier order, got {thresholds}")
        if self.qualifying_window_days < 1 or self.review_period_days < 1:
            raise ValueError("the qualifying window and the review period last a day at least")
        if not 0 <= self.downgrade_warning_days < self.review_period_days:
            raise ValueError("the downgrade warning must come within the review period")

    @property
    def entry_tier(self) -> TierDefinition:
        return self.tiers[0]

    def tier(self, name: str) -> TierDefinition:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise ValueError(f"unknown tier {name!r}")

    def rank(self, name: str) -> int:
        """0 for the entry tier, rising with each tier."""
        return self.tiers.index(self.tier(name))

    def tier_above(self, name: str) -> TierDefinition | None:
        rank = self.rank(name)
        return self.tiers[rank + 1] if rank + 1 < len(self.tiers) else None

    def tier_for_spend(self, spend: Decimal) -> TierDefinition:
        """The highest tier whose threshold the spend reaches (the entry tier below zero)."""
        reached = self.entry_tier
        for tier in self.tiers:
            if spend >= tier.threshold:
                reached = tier
        return reached

    def review_at(self, since: datetime) -> datetime:
        return since + timedelta(days=self.review_period_days)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def year_of(self, instant: datetime) -> int:
        """The calendar year, in the program's time zone, that the instant falls in."""
        return instant.astimezone(self.zone).year

    def start_of_year(self, year: int) -> datetime:
        return datetime(year, 1, 1, tzinfo=self.zone).astimezone(UTC)

    def counts_toward(self, occurred_at: datetime, as_of: datetime) -> bool:
        """Whether activity at `occurred_at` is in the qualifying period that ends at `as_of`
        (under the calendar-year basis: in that year or the one before)."""
        if occurred_at > as_of:
            return False
        if self.basis is SpendBasis.CALENDAR_YEAR:
            return self.year_of(occurred_at) >= self.year_of(as_of) - 1
        # Exactly one window back is already out: the window is (as_of - window, as_of].
        return occurred_at > as_of - timedelta(days=self.qualifying_window_days)

    def earliest_counted(self, as_of: datetime) -> datetime:
        """A lower bound (inclusive) of what `counts_toward` accepts, to narrow a query."""
        if self.basis is SpendBasis.CALENDAR_YEAR:
            return self.start_of_year(self.year_of(as_of) - 1)
        return as_of - timedelta(days=self.qualifying_window_days)


@dataclass(frozen=True)
class QualifyingActivity:
    """A purchase (positive) or a refund (negative) that moves qualifying spend."""

    activity_id: str
    customer_id: str
    amount: Decimal
    occurred_at: datetime
    # When the spend it moves was made: for a refund, its purchase's instant when known (a
    # December purchase refunded in January lowers the spend of December's year).
    attributed_at: datetime | None = None

    @property
    def spent_at(self) -> datetime:
        return self.attributed_at or self.occurred_at


def purchase_activity_id(partner_id: str, purchase_id: str) -> str:
    # Keyed by the purchase, not the event: one purchase counts once whatever carried it.
    return f"purchase:{partner_id}:{purchase_id}"


def refund_activity_id(partner_id: str, refund_id: str) -> str:
    return f"refund:{partner_id}:{refund_id}"


@dataclass(frozen=True)
class CustomerTier:
    customer_id: str
    tier: str
    since: datetime
    review_at: datetime
    enrolled_at: datetime | None = None


@dataclass(frozen=True)
class TierChange:
    customer_id: str
    from_tier: str
    to_tier: str
    direction: Direction
    reason: str
    effective_at: datetime
    review_at: datetime
    actor: str | None = None  # the staff member behind an override; None for the rules


@dataclass(frozen=True)
class Progress:
    tier: str
    qualifying_spend: Decimal
    next_tier: str | None
    amount_to_next_tier: Decimal | None


def new_customer(
    program: Program, customer_id: str, *, since: datetime, enrolled_at: datetime | None = None
) -> CustomerTier:
    """A customer starts in the entry tier."""
    return CustomerTier(
        customer_id=customer_id,
        tier=program.entry_tier.name,
        since=since,
        review_at=program.review_at(since),
        enrolled_at=enrolled_at,
    )


def qualifying_spend(
    program: Program, activities: Iterable[QualifyingActivity], as_of: datetime
) -> Decimal:
    """Purchases minus refunds in the qualifying period that ends at `as_of`. Under the
    calendar-year basis, the better of the spend of `as_of`'s year so far and of the year
    before it, each refund counted in its purchase's year."""
    if program.basis is SpendBasis.CALENDAR_YEAR:
        this_year = program.year_of(as_of)
        by_year = {this_year: Decimal(0), this_year - 1: Decimal(0)}
        for a in activities:
            year = program.year_of(a.spent_at)
            if a.occurred_at <= as_of and year in by_year:
                by_year[year] += a.amount
        return max(by_year.values())
    return sum(
        (a.amount for a in activities if program.counts_toward(a.occurred_at, as_of)),
        start=Decimal(0),
    )


def upgrade_for(
    program: Program,
    customer: CustomerTier,
    activities: Sequence[QualifyingActivity],
    arrived_at: datetime,
) -> TierChange | None:
    """The upgrade that activity occurring at `arrived_at` brings, if any: straight to the
    highest tier its spend reaches, never down (downgrades happen only at review).

    Spend is looked at as of `arrived_at` and as of every later activity already recorded:
    a purchase reported late may complete a crossing that the later purchases, counted
    before it arrived, fell short of.
    """
    checkpoints = sorted(
        {arrived_at, *(a.occurred_at for a in activities if a.occurred_at > arrived_at)}
    )
    best_rank, reached, reached_at = program.rank(customer.tier), None, None
    for checkpoint in checkpoints:
        tier = program.tier_for_spend(qualifying_spend(program, activities, checkpoint))
        if program.rank(tier.name) > best_rank:
            best_rank, reached, reached_at = program.rank(tier.name), tier, checkpoint
    if reached is None or reached_at is None:
        return None
    effective_at = _effective_upgrade(program, customer, reached_at)
    return TierChange(
        customer_id=customer.customer_id,
        from_tier=customer.tier,
        to_tier=reached.name,
        direction=Direction.UP,
        reason=QUALIFYING_SPEND,
        effective_at=effective_at,
        review_at=program.review_at(effective_at),
    )


def _effective_upgrade(program: Program, customer: CustomerTier, reached_at: datetime) -> datetime:
    """When an upgrade reached at `reached_at` takes effect: then, but never before the tier
    it replaces began, so the history stays in order. A customer not enrolled yet, still in
    the entry tier, has no tier that began: their `since` is only when they were first seen,
    which depends on the order the topics were read in, so it must not date an upgrade."""
    if customer.enrolled_at is None and customer.tier == program.entry_tier.name:
        return reached_at
    return max(reached_at, customer.since)


def enrol(program: Program, customer: CustomerTier, enrolled_at: datetime) -> CustomerTier:
    """The customer once their enrolment is known. One first seen by a purchase and still in
    the entry tier has been in it since they enrolled, as if the enrolment had come first."""
    if customer.enrolled_at is not None:
        return customer
    if customer.tier == program.entry_tier.name and enrolled_at < customer.since:
        return replace(
            customer,
            enrolled_at=enrolled_at,
            since=enrolled_at,
            review_at=program.review_at(enrolled_at),
        )
    return replace(customer, enrolled_at=enrolled_at)


def after_change(customer: CustomerTier, change: TierChange) -> CustomerTier:
    """The customer as the change leaves them."""
    return replace(
        customer, tier=change.to_tier, since=change.effective_at, review_at=change.review_at
    )


def _occurred_at(activity: QualifyingActivity) -> datetime:
    return activity.occurred_at


class SpendHistory:
    """One customer's qualifying activity while a batch of events is applied to it: each
    purchase is judged on what was recorded before it, as if the events came one at a time.

    Activity mostly arrives in the order it occurred. Then the spend of the qualifying period
    is kept as a running sum over a window that only moves forward, and judging a purchase
    costs O(1) amortised instead of a pass over the whole history per purchase. Activity
    reported late (before something already recorded) falls back to `upgrade_for`.
    """

    def __init__(self, program: Program, activities: Iterable[QualifyingActivity] = ()) -> None:
        self._program = program
        self._activities = sorted(activities, key=_occurred_at)
        self._top_rank = len(program.tiers) - 1
        self._forget_window()

    def _forget_window(self) -> None:
        # activities[_first:_end] are those counted as of `_as_of`, summing to `_spend`.
        self._first = self._end = 0
        self._spend = Decimal(0)
        self._as_of: datetime | None = None

    @property
    def activities(self) -> Sequence[QualifyingActivity]:
        """In the order they occurred."""
        return self._activities

    def record(self, activity: QualifyingActivity) -> None:
        if not self._activities or activity.occurred_at >= self._activities[-1].occurred_at:
            self._activities.append(activity)
            return
        position = bisect.bisect_right(self._activities, activity.occurred_at, key=_occurred_at)
        self._activities.insert(position, activity)
        if position < self._end:
            self._forget_window()

    def spend_as_of(self, as_of: datetime) -> Decimal:
        if self._program.basis is SpendBasis.CALENDAR_YEAR:
            # Two years' sums, not one window's: the history of two years is summed anew.
            return qualifying_spend(self._program, self._activities, as_of)
        if self._as_of is not None and as_of < self._as_of:
            self._forget_window()
        activities, counts_toward = self._activities, self._program.counts_toward
        while self._end < len(activities) and activities[self._end].occurred_at <= as_of:
            self._spend += activities[self._end].amount
            self._end += 1
        # The period's start only moves forward with `as_of`: what fell out stays out.
        while self._first < self._end and not counts_toward(
            activities[self._first].occurred_at, as_of
        ):
            self._spend -= activities[self._first].amount
            self._first += 1
        self._as_of = as_of
        return self._spend

    def upgrade_for(self, customer: CustomerTier, arrived_at: datetime) -> TierChange | None:
        """`upgrade_for` on this history, for activity that occurred at `arrived_at`."""
        program = self._program
        current_rank = program.rank(customer.tier)
        if current_rank == self._top_rank:
            return None
        if self._activities and self._activities[-1].occurred_at > arrived_at:
            return upgrade_for(program, customer, self._activities, arrived_at)
        reached = program.tier_for_spend(self.spend_as_of(arrived_at))
        if program.rank(reached.name) <= current_rank:
            return None
        effective_at = _effective_upgrade(program, customer, arrived_at)
        return TierChange(
            customer_id=customer.customer_id,
            from_tier=customer.tier,
            to_tier=reached.name,
            direction=Direction.UP,
            reason=QUALIFYING_SPEND,
            effective_at=effective_at,
            review_at=program.review_at(effective_at),
        )


def progress(program: Program, tier: str, spend: Decimal) -> Progress:
    """How far the spend is from the tier above the customer's own (nothing above the top)."""
    above = program.tier_above(tier)
    return Progress(
        tier=tier,
        qualifying_spend=spend,
        next_tier=above.name if above else None,
        amount_to_next_tier=max(above.threshold - spend, Decimal(0)) if above else None,
    )


def amount_to_keep_tier(
    program: Program, customer: CustomerTier, activities: Iterable[QualifyingActivity]
) -> Decimal:
    """The spend still missing for the qualifying spend as of the next review to support the
    customer's tier: what the activity known now will still count then falls short by."""
    kept = qualifying_spend(program, activities, customer.review_at)
    return max(program.tier(customer.tier).threshold - kept, Decimal(0))


def tier_after_review(program: Program, customer: CustomerTier, spend: Decimal) -> TierDefinition:
    """The tier a review with this qualifying spend leaves the customer in: theirs when the
    spend supports it, otherwise lower by the program's policy (never below what the spend
    supports, never above the tier they had)."""
    current = program.tier(customer.tier)
    supported = program.tier_for_spend(spend)
    if program.rank(supported.name) >= program.rank(current.name):
        return current
    if program.downgrade_policy is DowngradePolicy.RECOMPUTE:
        return supported
    return program.tiers[program.rank(current.name) - 1]


@dataclass(frozen=True)
class ReviewOutcome:
    customer: CustomerTier  # with the next review date set
    changes: tuple[TierChange, ...]  # the downgrades, in order (none when the tier was kept)


def review_due(
    program: Program,
    customer: CustomerTier,
    activities: Sequence[QualifyingActivity],
    as_of: datetime,
) -> ReviewOutcome:
    """Every review of the customer due by `as_of`, in order, each judged on the qualifying
    spend as of its own review date (not as of `as_of`): a job that runs late, or twice,
    decides exactly what one on time would have."""
    changes: list[TierChange] = []
    while customer.review_at <= as_of:
        reviewed_at = customer.review_at
        target = tier_after_review(
            program, customer, qualifying_spend(program, activities, reviewed_at)
        )
        if target.name == customer.tier:
            customer = replace(customer, review_at=program.review_at(reviewed_at))
            continue
        change = TierChange(
            customer_id=customer.customer_id,
            from_tier=customer.tier,
            to_tier=target.name,
            direction=Direction.DOWN,
            reason=REVIEW,
            effective_at=reviewed_at,
            review_at=program.review_at(reviewed_at),
        )
        customer = after_change(customer, change)
        changes.append(change)
    return ReviewOutcome(customer=customer, changes=tuple(changes))


@dataclass(frozen=True)
class DowngradeWarning:
    customer_id: str
    tier: str
    would_become: str
    review_at: datetime
    amount_to_keep_tier: Decimal


def downgrade_warning(
    program: Program,
    customer: CustomerTier,
    activities: Sequence[QualifyingActivity],
    as_of: datetime,
) -> DowngradeWarning | None:
    """The warning due as of `as_of`: within the warning period before the next review, when
    the spend already known would not keep the tier at that review (none once the customer
    has requalified, and none once the review is due: the review itself then decides)."""
    warn_from = customer.review_at - timedelta(days=program.downgrade_warning_days)
    if not warn_from <= as_of < customer.review_at:
        return None
    target = tier_after_review(
        program, customer, qualifying_spend(program, activities, customer.review_at)
    )
    if target.name == customer.tier:
        return None
    return DowngradeWarning(
        customer_id=customer.customer_id,
        tier=customer.tier,
        would_become=target.name,
        review_at=customer.review_at,
        amount_to_keep_tier=amount_to_keep_tier(program, customer, activities),
    )


def override(
    program: Program,
    customer: CustomerTier,
    *,
    tier: str,
    reason: str,
    actor: str,
    at: datetime,
    until: datetime | None,
) -> TierChange:
    """Staff assign a tier: it holds (as a floor: spend may still raise it) until `until`,
    when it is reviewed, or by default until the review a year after the change."""
    if tier == customer.tier:
        raise ValueError(f"the customer is already {tier}")
    if until is not None and until <= at:
        raise ValueError("an override lasts until a later instant")
    return TierChange(
        customer_id=customer.customer_id,
        from_tier=customer.tier,
        to_tier=program.tier(tier).name,
        direction=Direction.UP
        if program.rank(tier) > program.rank(customer.tier)
        else Direction.DOWN,
        reason=reason,
        effective_at=at,
        review_at=until or program.review_at(at),
        actor=actor,
    )
