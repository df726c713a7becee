"""The consumer's policy: facts kept once, members re-evaluated under their locks, the
segments entered and left published; and a member's features equal a recomputation from their
events whatever order and batches they came in."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from services.insights.domain.features import features
from services.insights.domain.model import Breakpoints, Rules
from services.insights.domain.segments import Criteria, CustomSegment
from services.insights.handlers import Context, apply_batch
from shared.messaging import events
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.insights import FakeInsights

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
RULES = Rules()
QUINTILES = Breakpoints(
    (10.0, 30.0, 60.0, 120.0), (1.0, 2.0, 4.0, 8.0), (20.0, 50.0, 120.0, 300.0), NOW, 10
)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def apply(repo: FakeInsights, *batches: Sequence[CloudEvent]) -> CollectingSink:
    sink = CollectingSink()
    for batch in batches:
        await apply_batch(batch, Context(insights=repo, sink=sink, now=NOW, rules=RULES))
    return sink


def published(sink: CollectingSink) -> list[tuple[str, str]]:
    return [
        (
            "entered" if event.type == events.SEGMENT_ENTERED else "left",
            event.data["segment"],
        )
        for _, _, event in sink.events
    ]


async def test_a_purchase_moves_a_new_member_into_segments_and_publishes_the_entries() -> None:
    repo = FakeInsights(stored_breakpoints=QUINTILES)
    sink = await apply(
        repo, [factories.enrolment("c1", enrolled_at=days_ago(100), at=days_ago(100))]
    )
    assert published(sink) == [("entered", "lifecycle:lapsed"), ("entered", "tier:bronze")]
    sink = await apply(repo, [factories.purchase("c1", "30.00", at=days_ago(1))])
    assert published(sink) == [("entered", "lifecycle:active"), ("left", "lifecycle:lapsed")]
    topics_and_keys = {(topic, key) for topic, key, _ in sink.events}
    assert topics_and_keys == {("fedelta.segments.v1", "c1")}


async def test_a_redelivered_batch_publishes_nothing_again() -> None:
    repo = FakeInsights(stored_breakpoints=QUINTILES)
    batch = [factories.enrolment("c1", at=days_ago(3)), factories.purchase("c1", at=days_ago(1))]
    await apply(repo, batch)
    assert published(await apply(repo, batch)) == []
    assert len(repo.purchases) == 1


async def test_members_are_locked_in_id_order_with_the_referrer() -> None:
    repo = FakeInsights()
    await apply(
        repo,
        [
            factories.purchase("c3"),
            factories.enrolment("c2", referred_by="c9"),
            factories.purchase("c1"),
        ],
    )
    assert repo.locked == [["c1", "c2", "c3", "c9"]]


async def test_an_erased_member_is_forgotten_and_later_events_dropped() -> None:
    repo = FakeInsights()
    await apply(repo, [factories.enrolment("c1"), factories.purchase("c1")])
    await apply(repo, [factories.erasure("c1")])
    sink = await apply(repo, [factories.purchase("c1"), factories.feedback("c1")])
    assert published(sink) == []
    assert repo.purchases == {} and repo.feedback == {} and "c1" not in repo.members
    assert not any(customer == "c1" for _, customer in repo.segments)


async def test_a_custom_segment_is_entered_with_its_reasons() -> None:
    big = CustomSegment("big", "", Criteria(min_monetary=Decimal("100")))
    repo = FakeInsights(custom=[big])
    sink = await apply(repo, [factories.purchase("c1", "150.00", at=days_ago(1))])
    entered = [event for _, _, event in sink.events if event.data["segment"] == "big"]
    assert entered and entered[0].data["reasons"] == ["150.00 spent"]


async def test_a_campaign_purchase_counts_whichever_comes_first() -> None:
    repo = FakeInsights()
    purchase = factories.purchase("c1", purchase_id="p1", at=days_ago(1))
    earned = factories.points_earned(
        "c1", 20, purchase_id="p1", rule_ids=["campaign:x"], at=days_ago(1)
    )
    await apply(repo, [earned], [purchase])
    facts = (await repo.facts_of(["c1"], NOW, RULES))["c1"]
    assert facts.activity.campaign_purchases == 1


def _story(customer: str) -> list[CloudEvent]:
    """A member's events: enrolment, purchases, a refund, points, a tier, perks, feedback."""
    p1 = factories.purchase(customer, "40.00", purchase_id="p1", at=days_ago(200), store_id="s1")
    grant = factories.engagement_rewarded(customer, grant_id="g1", at=days_ago(20))
    return [
        factories.enrolment(customer, enrolled_at=days_ago(300), at=days_ago(300)),
        factories.enrolment(
            "friend", referred_by=customer, enrolled_at=days_ago(50), at=days_ago(50)
        ),
        p1,
        factories.purchase(customer, "25.00", purchase_id="p2", at=days_ago(30)),
        factories.purchase(customer, "60.00", purchase_id="p3", at=days_ago(10)),
        factories.refund(customer, "p3", "10.00", refund_id="r1", at=days_ago(9)),
        factories.points_earned(
            customer, 60, purchase_id="p3", rule_ids=["campaign:c"], at=days_ago(10)
        ),
        factories.points_redeemed(customer, 30, at=days_ago(8)),
        factories.points_expired(customer, 5, at=days_ago(7)),
        factories.tier_change(customer, "silver", at=days_ago(10)),
        grant,
        factories.engagement_reward_revoked(customer, "g1", at=days_ago(15)),
        factories.engagement_rewarded(customer, grant_id="g2", at=days_ago(5)),
        factories.feedback(customer, "nps", 10, at=days_ago(4)),
    ]


STORY = _story("c1")


@settings(max_examples=60, deadline=None)
@given(order=st.permutations(range(len(STORY))), cuts=st.sets(st.integers(1, len(STORY) - 1)))
def test_features_do_not_depend_on_the_order_or_batches_of_the_events(
    order: list[int], cuts: set[int]
) -> None:
    shuffled = [STORY[i] for i in order]
    bounds = [0, *sorted(cuts), len(shuffled)]
    batches = [shuffled[a:b] for a, b in pairwise(bounds)]

    async def run() -> None:
        expected = FakeInsights(stored_breakpoints=QUINTILES)
        await apply(expected, STORY)
        repo = FakeInsights(stored_breakpoints=QUINTILES)
        await apply(repo, *batches)
        want = (await expected.facts_of(["c1"], NOW, RULES))["c1"]
        got = (await repo.facts_of(["c1"], NOW, RULES))["c1"]
        assert got == want
        assert features(got, NOW, RULES, QUINTILES) == features(want, NOW, RULES, QUINTILES)
        assert set(repo.segments) == set(expected.segments)

    asyncio.run(run())


async def test_the_story_recomputed_from_its_events() -> None:
    repo = FakeInsights(stored_breakpoints=QUINTILES)
    await apply(repo, STORY)
    found = features((await repo.facts_of(["c1"], NOW, RULES))["c1"], NOW, RULES, QUINTILES)
    assert (found.rfm.recency_days, found.rfm.frequency, str(found.rfm.monetary)) == (
        10,
        3,
        "115.00",
    )
    assert found.tier == "silver" and found.lifecycle == "won_back"
    facts = (await repo.facts_of(["c1"], NOW, RULES))["c1"]
    assert (facts.points.earned, facts.points.redeemed, facts.perks, facts.referrals) == (
        60,
        30,
        1,
        1,
    )
    assert facts.activity.campaign_purchases == 1
