"""The review and warning jobs' chunks on a fake repository: no database, no Kafka."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.tiers.domain.model import (
    Program,
)
from services.tiers.handlers import JobContext, review_tiers, warn_downgrades
from shared.messaging import events, topics
from shared.messaging.events import derived_event_id
from shared.messaging.outbox import CollectingSink
from tests.support.fakes.tiers import FakeReviews

PROGRAM = Program()
SINCE = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
REVIEW_AT = SINCE + timedelta(days=365)
NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)


@pytest.fixture
def reviews() -> FakeReviews:
    fake = FakeReviews(SINCE, PROGRAM)
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
