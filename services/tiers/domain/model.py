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


class Match(StrEnum):
    """How a tier's routes combine: any one of them reaches the tier, or all of them must."""

    ANY = "any"
    ALL = "all"


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"


QUALIFYING_SPEND = "qualifying_spend"
# An upgrade's reason when the tier was reached by a route other than spend.
QUALIFYING_REFERRALS = "qualifying_referrals"
QUALIFYING_VISITS = "qualifying_visits"
# A downgrade's reason: the review found the qualifying spend short of the tier.
REVIEW = "review"


@dataclass(frozen=True)
class Standing:
    """What qualifies over the program's basis: spend (purchases minus refunds), qualifying
    referrals (referred members whose first purchase was kept past the return window) and
    visits (purchases not wholly refunded)."""

    spend: Decimal = Decimal(0)
    referrals: int = 0
    visits: int = 0


@dataclass(frozen=True)
class Gaps:
    """Per route of a tier, what a standing still lacks (None: the tier has no such route);
    all zero once the tier is reached."""

    amount: Decimal | None
    referrals: int | None
    visits: int | None
    match: Match


@dataclass(frozen=True)
class TierDefinition:
    name: str
    # Per route, what reaches this tier: qualifying spend in the program currency (unless
    # `spend_route` is False: then the threshold means nothing), qualifying referrals and
    # visits (None: not by that route); `match` says whether any route or all of them must
    # be met. A tier with no route at all is reached by everyone (the entry tier).
    threshold: Decimal
    referrals: int | None = None
    visits: int | None = None
    match: Match = Match.ANY
    spend_route: bool = True

    @property
    def spend_threshold(self) -> Decimal | None:
        return self.threshold if self.spend_route else None

    def _routes(self, standing: Standing) -> list[bool]:
        routes = []
        if self.spend_route:
            routes.append(standing.spend >= self.threshold)
        if self.referrals is not None:
            routes.append(standing.referrals >= self.referrals)
        if self.visits is not None:
            routes.append(standing.visits >= self.visits)
        return routes

    def reached_by(self, standing: Standing) -> bool:
        routes = self._routes(standing)
        if not routes:
            return True
        return all(routes) if self.match is Match.ALL else any(routes)

    def gaps(self, standing: Standing) -> Gaps:
        reached = self.reached_by(standing)

        def count_gap(needed: int | None, have: int) -> int | None:
            if needed is None:
                return None
            return 0 if reached else max(needed - have, 0)

        amount = None
        if self.spend_route:
            amount = Decimal(0) if reached else max(self.threshold - standing.spend, Decimal(0))
        return Gaps(
            amount=amount,
            referrals=count_gap(self.referrals, standing.referrals),
            visits=count_gap(self.visits, standing.visits),
            match=self.match,
        )

    def reason(self, standing: Standing) -> str:
        """The route an upgrade to this tier names: spend when it is met (or the only one)."""
        if self.spend_route and (
            standing.spend >= self.threshold or (self.referrals is None and self.visits is None)
        ):
            return QUALIFYING_SPEND
        if self.referrals is not None and standing.referrals >= self.referrals:
            return QUALIFYING_REFERRALS
        if self.visits is not None and standing.visits >= self.visits:
            return QUALIFYING_VISITS
        return QUALIFYING_SPEND


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
    # A referred member's first purchase makes a qualifying referral for their referrer once
    # this long has passed without a refund of the whole purchase (points' pending days).
    referral_return_window_days: int = 0

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
        first = self.tiers[0]
        if first.spend_threshold != 0 or first.referrals is not None or first.visits is not None:
            # Every customer must have a tier, whatever their spend.
            raise ValueError(
                f"tiers[0].threshold: the first tier must start at 0 with no other route, "
                f"{names[0]} starts elsewhere"
            )
        _check_routes(self.tiers)
        if self.referral_return_window_days < 0:
            raise ValueError("referral_return_window_days: must be 0 or more")
        if self.qualifying_window_days < 1 or self.review_period_days < 1:
            raise ValueError("the qualifying window and the review period last a day at least")
        if not 0 <= self.downgrade_warning_days < self.review_period_days:
            raise ValueError("the downgrade warning must come within the review period")

    @property
    def counts_routes(self) -> bool:
        """Whether any tier is reached by referrals or visits (not by spend alone)."""
        return any(t.referrals is not None or t.visits is not None for t in self.tiers)

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
        return self.tier_for(Standing(spend=spend))

    def tier_for(self, standing: Standing) -> TierDefinition:
        """The highest tier the standing reaches by its routes (at least the entry tier)."""
        reached = self.entry_tier
        for tier in self.tiers[1:]:
            if tier.reached_by(standing):
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


def _check_routes(tiers: Sequence[TierDefinition]) -> None:
    """Each tier above the entry has a route; each route's numbers rise strictly with the
    tiers that have it. The errors name the field."""
    for n, tier in enumerate(tiers[1:], start=1):
        if not tier.spend_route and tier.referrals is None and tier.visits is None:
            raise ValueError(
                f"tiers[{n}]: {tier.name} needs a threshold, referrals or visits to be reached"
            )
        for route in ("referrals", "visits"):
            needed = getattr(tier, route)
            if needed is not None and needed < 1:
                raise ValueError(f"tiers[{n}].{route}: must be 1 or more, got {needed}")
    thresholds = [tier.threshold for tier in tiers if tier.spend_route]
    if any(lower >= higher for lower, higher in pairwise(thresholds)):
        raise ValueError(
            f"tiers[].threshold: tier thresholds must rise strictly in tier order, got {thresholds}"
        )
    for route in ("referrals", "visits"):
        counts = [getattr(tier, route) for tier in tiers if getattr(tier, route) is not None]
        if any(lower >= higher for lower, higher in pairwise(counts)):
            raise ValueError(f"tiers[].{route}: must rise strictly in tier order, got {counts}")


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
    # What it moves on the other routes: +1 visit for a purchase, -1 for the refund that
    # makes it wholly refunded; +1 referral for a qualifying referral (amount 0).
    visits: int = 0
    referrals: int = 0
    refund_of: str | None = None  # a refund's purchase (its activity id), when named
    # An import's opening tier (`domain/imports.py`, amount 0): held from `occurred_at`.
    tier: str | None = None

    @property
    def spent_at(self) -> datetime:
        return self.attributed_at or self.occurred_at


def purchase_activity_id(partner_id: str, purchase_id: str) -> str:
    # Keyed by the purchase, not the event: one purchase counts once whatever carried it.
    return f"purchase:{partner_id}:{purchase_id}"


def refund_activity_id(partner_id: str, refund_id: str) -> str:
    return f"refund:{partner_id}:{refund_id}"


def referral_activity_id(referred_id: str) -> str:
    # One per referred member: a member is referred once, by one referrer.
    return f"referral:{referred_id}"


def referral_activity(
    program: Program, referrer_id: str, referred_id: str, first_purchase_at: datetime
) -> QualifyingActivity:
    """The referral a referred member's first purchase, kept past the return window, earns
    their referrer: it counts from the moment the window has passed."""
    return QualifyingActivity(
        activity_id=referral_activity_id(referred_id),
        customer_id=referrer_id,
        amount=Decimal(0),
        occurred_at=referral_qualifies_at(program, first_purchase_at),
        referrals=1,
    )


def referral_qualifies_at(program: Program, first_purchase_at: datetime) -> datetime:
    return first_purchase_at + timedelta(days=program.referral_return_window_days)


def takes_visit_back(total: Decimal, refunded_before: Decimal, refund: Decimal) -> bool:
    """Whether this refund is the one that refunds its purchase wholly (its visit is gone)."""
    return refunded_before < total <= refunded_before + refund


def referral_kept(purchase_total: Decimal, refunded_in_window: Decimal) -> bool:
    """A refund of the whole first purchase within the window disqualifies the referral."""
    return refunded_in_window < purchase_total


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
    amount_to_next_tier: Decimal | None  # None: no next tier, or none reached by spend
    qualifying_referrals: int = 0
    qualifying_visits: int = 0
    referrals_to_next_tier: int | None = None  # None: the next tier has no referral route
    visits_to_next_tier: int | None = None
    next_tier_match: Match | None = None  # how the next tier's routes combine


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
    return standing(program, activities, as_of).spend


def standing(
    program: Program, activities: Iterable[QualifyingActivity], as_of: datetime
) -> Standing:
    """Spend, qualifying referrals and visits in the qualifying period that ends at `as_of`.
    Under the calendar-year basis, each route takes the better of `as_of`'s year so far and
    the year before it (a refund, and the visit it takes back, counted in its purchase's
    year)."""
    if program.basis is SpendBasis.CALENDAR_YEAR:
        this_year = program.year_of(as_of)
        by_year = {this_year: Standing(), this_year - 1: Standing()}
        for a in activities:
            year = program.year_of(a.spent_at)
            if a.occurred_at <= as_of and year in by_year:
                sums = by_year[year]
                by_year[year] = Standing(
                    sums.spend + a.amount, sums.referrals + a.referrals, sums.visits + a.visits
                )
        this, last = by_year[this_year], by_year[this_year - 1]
        return Standing(
            spend=max(this.spend, last.spend),
            referrals=max(this.referrals, last.referrals),
            visits=max(this.visits, last.visits),
        )
    spend, referrals, visits = Decimal(0), 0, 0
    for a in activities:
        if program.counts_toward(a.occurred_at, as_of):
            spend += a.amount
            referrals += a.referrals
            visits += a.visits
    return Standing(spend, referrals, visits)


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
    reached_with = Standing()
    for checkpoint in checkpoints:
        found = standing(program, activities, checkpoint)
        tier = program.tier_for(found)
        if program.rank(tier.name) > best_rank:
            best_rank, reached, reached_at = program.rank(tier.name), tier, checkpoint
            reached_with = found
    if reached is None or reached_at is None:
        return None
    return _upgrade(program, customer, reached, reached_with, reached_at)


def _upgrade(
    program: Program,
    customer: CustomerTier,
    reached: TierDefinition,
    reached_with: Standing,
    reached_at: datetime,
) -> TierChange:
    effective_at = _effective_upgrade(program, customer, reached_at)
    return TierChange(
        customer_id=customer.customer_id,
        from_tier=customer.tier,
        to_tier=reached.name,
        direction=Direction.UP,
        reason=reached.reason(reached_with),
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
        self._referrals = self._visits = 0
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
        return self.standing_as_of(as_of).spend

    def standing_as_of(self, as_of: datetime) -> Standing:
        if self._program.basis is SpendBasis.CALENDAR_YEAR:
            # Two years' sums, not one window's: the history of two years is summed anew.
            return standing(self._program, self._activities, as_of)
        if self._as_of is not None and as_of < self._as_of:
            self._forget_window()
        activities, counts_toward = self._activities, self._program.counts_toward
        while self._end < len(activities) and activities[self._end].occurred_at <= as_of:
            entering = activities[self._end]
            self._spend += entering.amount
            self._referrals += entering.referrals
            self._visits += entering.visits
            self._end += 1
        # The period's start only moves forward with `as_of`: what fell out stays out.
        while self._first < self._end and not counts_toward(
            activities[self._first].occurred_at, as_of
        ):
            leaving = activities[self._first]
            self._spend -= leaving.amount
            self._referrals -= leaving.referrals
            self._visits -= leaving.visits
            self._first += 1
        self._as_of = as_of
        return Standing(self._spend, self._referrals, self._visits)

    def upgrade_for(self, customer: CustomerTier, arrived_at: datetime) -> TierChange | None:
        """`upgrade_for` on this history, for activity that occurred at `arrived_at`."""
        program = self._program
        current_rank = program.rank(customer.tier)
        if current_rank == self._top_rank:
            return None
        if self._activities and self._activities[-1].occurred_at > arrived_at:
            return upgrade_for(program, customer, self._activities, arrived_at)
        found = self.standing_as_of(arrived_at)
        reached = program.tier_for(found)
        if program.rank(reached.name) <= current_rank:
            return None
        return _upgrade(program, customer, reached, found, arrived_at)


def _as_standing(spend_or_standing: Decimal | Standing) -> Standing:
    if isinstance(spend_or_standing, Standing):
        return spend_or_standing
    return Standing(spend=spend_or_standing)


def progress(program: Program, tier: str, spend: Decimal | Standing) -> Progress:
    """How far the standing is from the tier above the customer's own, by each of that
    tier's routes (nothing above the top)."""
    now = _as_standing(spend)
    above = program.tier_above(tier)
    gaps = above.gaps(now) if above else None
    return Progress(
        tier=tier,
        qualifying_spend=now.spend,
        next_tier=above.name if above else None,
        amount_to_next_tier=gaps.amount if gaps else None,
        qualifying_referrals=now.referrals,
        qualifying_visits=now.visits,
        referrals_to_next_tier=gaps.referrals if gaps else None,
        visits_to_next_tier=gaps.visits if gaps else None,
        next_tier_match=gaps.match if gaps else None,
    )


def to_keep_tier(
    program: Program, customer: CustomerTier, activities: Iterable[QualifyingActivity]
) -> Gaps:
    """Per route of the customer's tier, what the standing as of the next review still lacks
    to support it: what the activity known now will still count then falls short by."""
    return program.tier(customer.tier).gaps(standing(program, activities, customer.review_at))


def amount_to_keep_tier(
    program: Program, customer: CustomerTier, activities: Iterable[QualifyingActivity]
) -> Decimal:
    """The spend still missing for the qualifying spend as of the next review to support the
    customer's tier (0 too when the tier is kept by another route, or has no spend route)."""
    return to_keep_tier(program, customer, activities).amount or Decimal(0)


def tier_after_review(
    program: Program, customer: CustomerTier, spend: Decimal | Standing
) -> TierDefinition:
    """The tier a review with this standing leaves the customer in: theirs when the standing
    supports it, otherwise lower by the program's policy (never below what the standing
    supports, never above the tier they had)."""
    current = program.tier(customer.tier)
    supported = program.tier_for(_as_standing(spend))
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
        target = tier_after_review(program, customer, standing(program, activities, reviewed_at))
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
    # The other routes of the tier (None: not a route of it), and how they combine.
    referrals_to_keep_tier: int | None = None
    visits_to_keep_tier: int | None = None
    spend_route: bool = True
    match: Match = Match.ANY


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
    at_review = standing(program, activities, customer.review_at)
    target = tier_after_review(program, customer, at_review)
    if target.name == customer.tier:
        return None
    gaps = program.tier(customer.tier).gaps(at_review)
    return DowngradeWarning(
        customer_id=customer.customer_id,
        tier=customer.tier,
        would_become=target.name,
        review_at=customer.review_at,
        amount_to_keep_tier=gaps.amount or Decimal(0),
        referrals_to_keep_tier=gaps.referrals,
        visits_to_keep_tier=gaps.visits,
        spend_route=gaps.amount is not None,
        match=gaps.match,
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
