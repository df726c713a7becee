"""The review and warning jobs' chunks on a fake repository: no database, no Kafka."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.tiers.adapters.repository import TierReviews
from services.tiers.domain.model import (
    CustomerTier,
    DowngradeWarning,
    Program,
    QualifyingActivity,
    TierChange,
)
from services.tiers.handlers import JobContext, review_tiers, warn_downgrades
from shared.messaging import events, topics
from shared.messaging.events import derived_event_id
from shared.messaging.outbox import CollectingSink

PROGRAM = Program()
SINCE = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
REVIEW_AT = SINCE + timedelta(days=365)
NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)


class FakeReviews:
    def __init__(self) -> None:
        self.customers: dict[str, CustomerTier] = {}
        self.activity: list[QualifyingActivity] = []
        self.history: list[TierChange] = []
        self.warned: set[tuple[str, datetime]] = set()

    def add(self, tier: str, customer_id: str, *spend: tuple[str, datetime]) -> None:
        self.customers[customer_id] = CustomerTier(
            customer_id, tier, since=SINCE, review_at=PROGRAM.review_at(SINCE)
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

    async def activities_since(
        self, since: Mapping[str, datetime]
    ) -> dict[str, list[QualifyingActivity]]:
        return {
            customer_id: [
                a for a in self.activity if a.customer_id == customer_id and a.occurred_at >= at
            ]
            for customer_id, at in since.items()
        }

    async def save_customers(self, customers: Sequence[CustomerTier]) -> None:
        for customer in customers:
            self.customers[customer.customer_id] = customer

    async def append_history(self, changes: Sequence[TierChange]) -> None:
        self.history.extend(changes)


def _conforms(fake: FakeReviews) -> TierReviews:
    return fake  # mypy checks the fake against the Protocol here


@pytest.fixture
def reviews() -> FakeReviews:
    fake = FakeReviews()
    fake.add("gold", "keeps", ("2100", REVIEW_AT - timedelta(days=20)))
    fake.add("gold", "drops", ("1500", REVIEW_AT - timedelta(days=20)))
    fake.add("bronze", "entry")
    return fake


def context(reviews: FakeReviews, sink: CollectingSink) -> JobContext:
    return JobContext(tiers=reviews, sink=sink, program=PROGRAM, now=NOW)


async def test_a_review_lowers_only_the_tiers_the_spend_no_longer_supports(
    reviews: FakeReviews,
) -> None:
    sink = CollectingSink()
    done = await review_tiers(REVIEW_AT, "", 100, context(reviews, sink))
    assert (done.customers, done.events) == (3, 1)
    assert {c: reviews.customers[c].tier for c in reviews.customers} == {
        "keeps": "gold",
        "drops": "silver",
        "entry": "bronze",
    }
    assert all(c.review_at == REVIEW_AT + timedelta(days=365) for c in reviews.customers.values())
    [change] = reviews.history
    assert (change.customer_id, change.direction.value) == ("drops", "down")
    [(topic, key, event)] = sink.events
    assert (topic, key, event.type) == (topics.TIERS, "drops", events.TIER_CHANGED)
    changed = event.data_as(events.TierChanged)
    assert (changed.from_tier, changed.to_tier, changed.direction) == ("gold", "silver", "down")
    assert changed.effective_at == REVIEW_AT
    assert event.id == derived_event_id(
        f"tier-review/drops/{REVIEW_AT.isoformat()}", "tier-changed"
    )


async def test_reviewing_again_as_of_the_same_instant_changes_nothing(
    reviews: FakeReviews,
) -> None:
    await review_tiers(REVIEW_AT, "", 100, context(reviews, CollectingSink()))
    before = dict(reviews.customers)
    sink = CollectingSink()
    done = await review_tiers(REVIEW_AT, "", 100, context(reviews, sink))
    assert (done.customers, done.events, done.last_customer_id) == (0, 0, None)
    assert reviews.customers == before
    assert sink.events == []


async def test_a_chunk_stops_at_its_limit_and_the_next_starts_after_it(
    reviews: FakeReviews,
) -> None:
    first = await review_tiers(REVIEW_AT, "", 2, context(reviews, CollectingSink()))
    assert (first.customers, first.last_customer_id) == (2, "entry")
    second = await review_tiers(REVIEW_AT, "entry", 2, context(reviews, CollectingSink()))
    assert (second.customers, second.last_customer_id) == (1, "keeps")


async def test_a_warning_goes_once_to_whom_the_review_would_downgrade(
    reviews: FakeReviews,
) -> None:
    as_of = REVIEW_AT - timedelta(days=30)
    sink = CollectingSink()
    done = await warn_downgrades(as_of, "", 100, context(reviews, sink))
    assert (done.customers, done.events) == (3, 1)
    [(topic, key, event)] = sink.events
    assert (topic, key, event.type) == (topics.TIERS, "drops", events.TIER_DOWNGRADE_WARNING)
    warning = event.data_as(events.TierDowngradeWarning)
    assert (warning.tier, warning.would_become) == ("gold", "silver")
    assert warning.review_at == REVIEW_AT
    assert warning.amount_to_keep_tier == Decimal(500)

    again = CollectingSink()
    done = await warn_downgrades(as_of, "", 100, context(reviews, again))
    assert done.events == 0
    assert again.events == []
    later = CollectingSink()
    await warn_downgrades(as_of + timedelta(days=10), "", 100, context(reviews, later))
    assert later.events == []


async def test_no_warning_outside_the_period_before_the_review(reviews: FakeReviews) -> None:
    sink = CollectingSink()
    early = REVIEW_AT - timedelta(days=30, seconds=1)
    assert (await warn_downgrades(early, "", 100, context(reviews, sink))).customers == 0
    assert (await warn_downgrades(REVIEW_AT, "", 100, context(reviews, sink))).customers == 0
    assert sink.events == []
