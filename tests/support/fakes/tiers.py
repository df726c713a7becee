"""In-memory stand-ins for the tiers database, typed against the service's ports so that mypy
checks they keep up with them."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.tiers import ports
from services.tiers.adapters.program_file import program_json
from services.tiers.domain.buckets import (
    ActivityBucket,
    BucketKey,
    Window,
    bucket_key,
    buckets_of,
    merged,
    utc_day,
)
from services.tiers.domain.model import (
    CustomerTier,
    DowngradeWarning,
    Program,
    QualifyingActivity,
    TierChange,
)
from services.tiers.ports import DueReferral, RefundedPurchase, SwitchedProgram


@dataclass
class FakeReferral:
    referrer_id: str
    first_purchase: QualifyingActivity | None = None
    status: str = "pending"  # pending | qualified | disqualified


SWITCHED_AT = datetime(2026, 11, 23, 12, tzinfo=UTC)


class FakeTiers:
    """The set-based repository in memory; `calls` names each method called, in order, so a
    test can tell a batch costs one call per step, not one per event."""

    def __init__(self) -> None:
        self.customers: dict[str, CustomerTier] = {}
        self.activity: dict[str, QualifyingActivity] = {}
        self.history: list[TierChange] = []
        self.locked: list[list[str]] = []
        self.calls: list[str] = []
        self.referrals: dict[str, FakeReferral] = {}  # by referred member

    async def add_customers(self, customers: Sequence[CustomerTier]) -> None:
        self.calls.append("add_customers")
        for customer in customers:
            self.customers.setdefault(customer.customer_id, customer)

    async def lock_customers(self, customer_ids: Collection[str]) -> dict[str, CustomerTier]:
        self.calls.append("lock_customers")
        self.locked.append(sorted(customer_ids))
        return {c: self.customers[c] for c in sorted(customer_ids) if c in self.customers}

    async def record_activities(self, activities: Sequence[QualifyingActivity]) -> set[str]:
        self.calls.append("record_activities")
        new: set[str] = set()
        for activity in activities:
            if activity.activity_id not in self.activity:
                self.activity[activity.activity_id] = activity
                new.add(activity.activity_id)
                self._note_first_purchase(activity)
        return new

    def _note_first_purchase(self, activity: QualifyingActivity) -> None:
        referral = self.referrals.get(activity.customer_id)
        if referral is None or referral.status != "pending" or not _is_purchase(activity):
            return
        first = referral.first_purchase
        if first is None or _purchase_order(activity) < _purchase_order(first):
            referral.first_purchase = activity

    async def refunds_of(self, purchase_ids: Collection[str]) -> dict[str, RefundedPurchase]:
        self.calls.append("refunds_of")
        found: dict[str, RefundedPurchase] = {}
        for purchase_id in purchase_ids:
            if purchase_id in self.activity:
                refunds = {
                    a.activity_id: -a.amount
                    for a in self.activity.values()
                    if a.refund_of == purchase_id
                }
                found[purchase_id] = RefundedPurchase(self.activity[purchase_id].amount, refunds)
        return found

    async def add_referrals(self, referred_by: Mapping[str, str]) -> None:
        self.calls.append("add_referrals")
        for referred, referrer in referred_by.items():
            if referred in self.referrals:
                continue
            bought = sorted(
                (
                    a
                    for a in self.activity.values()
                    if a.customer_id == referred and _is_purchase(a)
                ),
                key=_purchase_order,
            )
            self.referrals[referred] = FakeReferral(referrer, bought[0] if bought else None)

    async def due_referrals(
        self, as_of: datetime, window_days: int, *, after: str, limit: int
    ) -> dict[str, str]:
        bought_by = as_of - timedelta(days=window_days)
        due = {
            referred: referral.referrer_id
            for referred, referral in sorted(self.referrals.items())
            if referral.status == "pending"
            and referral.first_purchase is not None
            and referral.first_purchase.occurred_at <= bought_by
            and referred > after
        }
        return dict(list(due.items())[:limit])

    async def lock_referrals(
        self, referred_ids: Collection[str], as_of: datetime, window_days: int
    ) -> list[DueReferral]:
        due = await self.due_referrals(as_of, window_days, after="", limit=len(self.referrals))
        found = []
        for referred in sorted(set(referred_ids) & set(due)):
            first = self.referrals[referred].first_purchase
            assert first is not None
            window_end = first.occurred_at + timedelta(days=window_days)
            refunded = sum(
                (
                    -a.amount
                    for a in self.activity.values()
                    if a.refund_of == first.activity_id and a.occurred_at <= window_end
                ),
                start=Decimal(0),
            )
            found.append(
                DueReferral(referred, due[referred], first.occurred_at, first.amount, refunded)
            )
        return found

    async def decide_referrals(
        self, qualified: Collection[str], disqualified: Collection[str], at: datetime
    ) -> None:
        for referred in qualified:
            self.referrals[referred].status = "qualified"
        for referred in disqualified:
            self.referrals[referred].status = "disqualified"

    async def lock_due_for_review(
        self, as_of: datetime, *, after: str, limit: int
    ) -> list[CustomerTier]:
        due = [c for _, c in sorted(self.customers.items()) if c.review_at <= as_of]
        return [c for c in due if c.customer_id > after][:limit]

    async def lock_due_for_warning(
        self, as_of: datetime, warn_until: datetime, *, after: str, limit: int
    ) -> list[CustomerTier]:
        return []  # the warnings are FakeReviews'

    async def record_warnings(self, warnings: Sequence[DowngradeWarning], at: datetime) -> None:
        return None

    async def buckets_since(
        self, windows: Mapping[str, Window], year_zone: str | None
    ) -> dict[str, list[ActivityBucket]]:
        self.calls.append("buckets_since")
        return _buckets_since(self.activity.values(), windows, year_zone)

    async def bucket_activities(
        self, keys: Sequence[BucketKey]
    ) -> dict[str, list[QualifyingActivity]]:
        self.calls.append("bucket_activities")
        return _bucket_activities(self.activity.values(), keys)

    async def purchase_times(self, activity_ids: Collection[str]) -> dict[str, datetime]:
        self.calls.append("purchase_times")
        return {i: self.activity[i].occurred_at for i in activity_ids if i in self.activity}

    async def save_customers(self, customers: Sequence[CustomerTier]) -> None:
        self.calls.append("save_customers")
        for customer in customers:
            assert customer.customer_id in self.customers, "only known customers are saved"
            self.customers[customer.customer_id] = customer

    async def append_history(self, changes: Sequence[TierChange]) -> None:
        self.calls.append("append_history")
        self.history.extend(changes)


def _buckets_since(
    activity: Iterable[QualifyingActivity], windows: Mapping[str, Window], year_zone: str | None
) -> dict[str, list[ActivityBucket]]:
    """What the database answers (its buckets kept by its triggers, read as its statement
    reads them) for these customers' windows."""
    mine = [a for a in activity if a.customer_id in windows]
    return {
        customer_id: merged(
            (
                b
                for b in buckets_of(a for a in mine if a.customer_id == customer_id)
                if b.key.day >= utc_day(window.since)
            ),
            window,
            year_zone,
        )
        for customer_id, window in windows.items()
    }


def _bucket_activities(
    activity: Iterable[QualifyingActivity], keys: Sequence[BucketKey]
) -> dict[str, list[QualifyingActivity]]:
    wanted = set(keys)
    found: dict[str, list[QualifyingActivity]] = {}
    for a in sorted(activity, key=lambda a: a.occurred_at):
        if bucket_key(a) in wanted:
            found.setdefault(a.customer_id, []).append(a)
    return found


def _is_purchase(activity: QualifyingActivity) -> bool:
    return activity.activity_id.startswith("purchase:")


def _purchase_order(activity: QualifyingActivity) -> tuple[datetime, str]:
    return (activity.occurred_at, activity.activity_id)


class FakeReviews:
    def __init__(self, since: datetime, program: Program) -> None:
        self._since = since
        self._program = program
        self.customers: dict[str, CustomerTier] = {}
        self.activity: list[QualifyingActivity] = []
        self.history: list[TierChange] = []
        self.warned: set[tuple[str, datetime]] = set()

    def add(self, tier: str, customer_id: str, *spend: tuple[str, datetime]) -> None:
        self.customers[customer_id] = CustomerTier(
            customer_id,
            tier,
            since=self._since,
            review_at=self._program.review_at(self._since),
        )
        for n, (amount, at) in enumerate(spend):
            self.activity.append(
                QualifyingActivity(
                    f"purchase:demo:{customer_id}-{n}", customer_id, Decimal(amount), at
                )
            )

    async def lock_due_for_review(
        self, as_of: datetime, *, after: str, limit: int
    ) -> list[CustomerTier]:
        due = [c for _, c in sorted(self.customers.items()) if c.review_at <= as_of]
        return [c for c in due if c.customer_id > after][:limit]

    async def lock_due_for_warning(
        self, as_of: datetime, warn_until: datetime, *, after: str, limit: int
    ) -> list[CustomerTier]:
        due = [
            c
            for _, c in sorted(self.customers.items())
            if as_of < c.review_at <= warn_until
            and (c.customer_id, c.review_at) not in self.warned
            and c.customer_id > after
        ]
        return due[:limit]

    async def record_warnings(self, warnings: Sequence[DowngradeWarning], at: datetime) -> None:
        self.warned.update((w.customer_id, w.review_at) for w in warnings)

    async def buckets_since(
        self, windows: Mapping[str, Window], year_zone: str | None
    ) -> dict[str, list[ActivityBucket]]:
        return _buckets_since(self.activity, windows, year_zone)

    async def bucket_activities(
        self, keys: Sequence[BucketKey]
    ) -> dict[str, list[QualifyingActivity]]:
        return _bucket_activities(self.activity, keys)

    async def save_customers(self, customers: Sequence[CustomerTier]) -> None:
        for customer in customers:
            self.customers[customer.customer_id] = customer

    async def append_history(self, changes: Sequence[TierChange]) -> None:
        self.history.extend(changes)

    # No referrals here: FakeTiers has them.
    async def due_referrals(
        self, as_of: datetime, window_days: int, *, after: str, limit: int
    ) -> dict[str, str]:
        return {}

    async def lock_referrals(
        self, referred_ids: Collection[str], as_of: datetime, window_days: int
    ) -> list[DueReferral]:
        return []

    async def decide_referrals(
        self, qualified: Collection[str], disqualified: Collection[str], at: datetime
    ) -> None:
        return None

    async def lock_customers(self, customer_ids: Collection[str]) -> dict[str, CustomerTier]:
        return {c: self.customers[c] for c in sorted(customer_ids) if c in self.customers}

    async def record_activities(self, activities: Sequence[QualifyingActivity]) -> set[str]:
        known = {a.activity_id for a in self.activity}
        new = [a for a in activities if a.activity_id not in known]
        self.activity.extend(new)
        return {a.activity_id for a in new}


@dataclass
class FakeSwitches:
    """The replay table as `SwitchedPrograms` sees it, counting the reads."""

    programs: dict[int, str] = field(default_factory=dict)
    latest_reads: int = 0
    text_reads: list[int] = field(default_factory=list)
    waits: int = 0
    switched_at: datetime = SWITCHED_AT

    def switch(self, program: Program | str) -> None:
        generation = max(self.programs, default=0) + 1
        text = program if isinstance(program, str) else program_json(program)
        self.programs[generation] = text

    async def latest(self) -> SwitchedProgram | None:
        self.latest_reads += 1
        if not self.programs:
            return None
        generation = max(self.programs)
        return SwitchedProgram(generation, f"replay-{generation}", self.switched_at)

    async def program_text(self, generation: int) -> str:
        self.text_reads.append(generation)
        return self.programs[generation]

    async def wait_for_switch(self) -> None:
        self.waits += 1


def _conforming() -> tuple[
    ports.ConsumerRepository, ports.JobRepository, ports.JobRepository, ports.SwitchedPrograms
]:
    """Never called: mypy checks here that each fake implements its port."""
    return FakeTiers(), FakeTiers(), FakeReviews(SWITCHED_AT, Program()), FakeSwitches()
