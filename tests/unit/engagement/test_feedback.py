"""Feedback in engagement: the domain's rules (rewardable feedback, one
grant per purchase, the NPS and its rounding) and the handler on the fake repository (kept
once, never for an erased member, rewarded once per purchase when configured, erased with the
member)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.engagement.domain import feedback as rules
from services.engagement.domain.feedback import Feedback, FeedbackReward, nps_of
from services.engagement.domain.model import InvalidRule, Reward, purchase_key
from services.engagement.handlers import HANDLED_TYPES, Context, apply_batch
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.engagement import FakeEngagement

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
AT = NOW - timedelta(hours=1)
PARTNER = factories.PARTNER
REWARD = FeedbackReward(Reward(points=25))


def given_feedback(**changes: object) -> Feedback:
    fields: dict[str, object] = {
        "feedback_id": "f1",
        "partner_id": PARTNER,
        "customer_id": "c1",
        "kind": "nps",
        "given_at": AT,
        "purchase_id": "p1",
        "score": 9,
    }
    fields.update(changes)
    return Feedback(**fields)  # type: ignore[arg-type]


def received(customer_id: str = "c1", **fields: object) -> CloudEvent:
    fields.setdefault("at", AT)
    return factories.feedback(customer_id, **fields)  # type: ignore[arg-type]


async def apply(repository: FakeEngagement, *batch: CloudEvent) -> list[CloudEvent]:
    sink = CollectingSink()
    await apply_batch(list(batch), Context(repository, sink, NOW))
    for topic, key, event in sink.events:
        assert (topic, key) == (topics.ENGAGEMENT, event.subject)
    return [event for _, _, event in sink.events]


# --- Domain ------------------------------------------------------------------------------


def test_only_feedback_naming_a_purchase_of_a_rewarded_kind_is_rewarded() -> None:
    assert rules.rewardable(given_feedback(), REWARD)
    assert not rules.rewardable(given_feedback(purchase_id=None), REWARD)
    assert not rules.rewardable(given_feedback(), None)
    reviews_only = FeedbackReward(Reward(points=25), kinds=frozenset({"review"}))
    assert not rules.rewardable(given_feedback(), reviews_only)
    assert rules.rewardable(given_feedback(kind="review", score=4), reviews_only)


def test_a_feedback_reward_names_known_kinds_and_at_least_one() -> None:
    with pytest.raises(InvalidRule, match="kinds"):
        FeedbackReward(Reward(points=1), kinds=frozenset())
    with pytest.raises(InvalidRule, match="kinds"):
        FeedbackReward(Reward(points=1), kinds=frozenset({"nps", "rant"}))


def test_the_grant_is_the_purchases_whichever_feedback_names_it() -> None:
    key = purchase_key(PARTNER, "p1")
    first, second = given_feedback(feedback_id="f1"), given_feedback(feedback_id="f2")
    assert first.purchase_key == second.purchase_key == key
    assert rules.feedback_grant_id(key) == rules.feedback_grant_id(key)
    assert rules.feedback_grant_id(key) != rules.feedback_grant_id(purchase_key(PARTNER, "p2"))
    assert rules.rewarded_once_per_purchase([first, second], REWARD) == [first]


def test_nps_categories_and_score() -> None:
    nps = nps_of([10, 9, 8, 7, 6, 0])
    assert (nps.count, nps.promoters, nps.passives, nps.detractors) == (6, 2, 2, 2)
    assert nps.score == Decimal("0.0")
    assert nps_of([]).score is None
    assert nps_of([9, 9, 3]).score == Decimal("33.3")
    assert nps_of([0, 0, 9]).score == Decimal("-33.3")
    assert nps_of([9] * 7 + [5]).score == Decimal("75.0")
    # A half rounds away from zero, as PostgreSQL's round(numeric) does.
    assert nps_of([9] + [7] * 7).score == Decimal("12.5")
    assert nps_of([9] * 3 + [8] * 36 + [0] * 1).score == Decimal("5.0")
    assert nps_of([9] + [8] * 199).score == Decimal("0.5")
    assert nps_of([0] + [8] * 199).score == Decimal("-0.5")


@given(st.lists(st.integers(min_value=0, max_value=10), max_size=300))
def test_nps_is_promoters_share_minus_detractors_share(scores: list[int]) -> None:
    nps = nps_of(scores)
    assert nps.count == len(scores) == nps.promoters + nps.passives + nps.detractors
    if not scores:
        assert nps.score is None
        return
    assert nps.score is not None and Decimal(-100) <= nps.score <= Decimal(100)
    exact = Decimal(100 * (nps.promoters - nps.detractors)) / len(scores)
    assert abs(nps.score - exact) <= Decimal("0.05")
    assert nps.score == exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


# --- Handler -----------------------------------------------------------------------------


def test_engagement_handles_feedback() -> None:
    assert events.FEEDBACK_RECEIVED in HANDLED_TYPES


async def test_feedback_is_kept_once_with_its_comment_and_store() -> None:
    repository = FakeEngagement()
    event = received(feedback_id="f1", store_id="s1", comment="Lovely coffee", score=10)
    assert await apply(repository, event, event) == []
    await apply(repository, event)  # a redelivery
    [kept] = repository.feedback.values()
    assert (kept.key, kept.store_id, kept.comment, kept.score) == (
        f"{PARTNER}:f1",
        "s1",
        "Lovely coffee",
        10,
    )
    assert repository.calls.count("record_feedback") == 2  # one per batch, not per event


async def test_without_a_configured_reward_feedback_earns_nothing() -> None:
    repository = FakeEngagement()
    assert await apply(repository, received(purchase_id="p1")) == []
    assert repository.feedback_grants == {}


async def test_feedback_on_a_purchase_is_rewarded_once_per_purchase() -> None:
    repository = FakeEngagement(feedback_config=REWARD)
    emitted = await apply(
        repository,
        received(feedback_id="f1", purchase_id="p1"),
        received(feedback_id="f2", purchase_id="p1", kind="review", score=5),
        received(feedback_id="f3"),  # no purchase: never rewarded
    )
    [rewarded] = emitted
    payload = rewarded.data_as(events.EngagementRewarded)
    key = purchase_key(PARTNER, "p1")
    assert payload.grant_id == rules.feedback_grant_id(key)
    assert (payload.reason, payload.points, payload.purchase_id) == ("feedback", 25, "p1")
    assert (payload.rule_id, payload.name, payload.granted_at) == (
        rules.RULE_ID,
        rules.DEFAULT_NAME,
        AT,
    )
    # Feedback on the same purchase later, and a redelivery: no second reward.
    assert await apply(repository, received(feedback_id="f4", purchase_id="p1")) == []
    assert await apply(repository, received(feedback_id="f1", purchase_id="p1")) == []
    assert len(repository.feedback) == 4


async def test_only_the_configured_kinds_are_rewarded() -> None:
    config = FeedbackReward(Reward(points=5), kinds=frozenset({"review"}), name="Thanks!")
    repository = FakeEngagement(feedback_config=config)
    assert await apply(repository, received(feedback_id="f1", purchase_id="p1")) == []
    [rewarded] = await apply(
        repository, received(feedback_id="f2", purchase_id="p1", kind="review", score=3)
    )
    assert rewarded.data_as(events.EngagementRewarded).name == "Thanks!"


async def test_an_erasure_deletes_the_members_feedback_and_refuses_what_comes_after() -> None:
    repository = FakeEngagement(feedback_config=REWARD)
    await apply(repository, received(feedback_id="f1", purchase_id="p1", comment="Mine"))
    await apply(repository, received("c2", feedback_id="f9", comment="Theirs"))
    await apply(repository, factories.erasure("c1", at=AT))
    assert [f.customer_id for f in repository.feedback.values()] == ["c2"]
    assert repository.feedback_grants == {}
    # Feedback read after the erasure (it travels on its own topic): never kept nor rewarded.
    late = received(feedback_id="f2", purchase_id="p2", comment="Late")
    assert await apply(repository, late) == []
    assert [f.customer_id for f in repository.feedback.values()] == ["c2"]


async def test_feedback_in_the_erasures_batch_is_not_kept() -> None:
    repository = FakeEngagement(feedback_config=REWARD)
    emitted = await apply(
        repository,
        received(feedback_id="f1", purchase_id="p1", comment="Mine"),
        factories.erasure("c1", at=AT),
    )
    assert emitted == []
    assert repository.feedback == {}
