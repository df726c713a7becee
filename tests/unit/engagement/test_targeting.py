"""Targeting (issue 21): a stamp card, a challenge or a surprise may name `min_tier` (at least),
`tier` (exactly) and a `segment` of insights. A targeted rule applies to a purchase only when
the member is in the segment when engagement applies it; the read model of segment events
keeps, per member and segment, the newest change whatever the order it is read in, and an
erasure removes it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.engagement.api.schemas import (
    ChallengeIn,
    ChallengePatchIn,
    StampCardIn,
    StampCardPatchIn,
    SurpriseIn,
    SurprisePatchIn,
)
from services.engagement.domain.challenges import (
    ChallengeRule,
    Goal,
    contribution_of,
    referral_contribution,
)
from services.engagement.domain.model import (
    InvalidRule,
    Membership,
    Purchase,
    Reward,
    Scope,
    Window,
    newest,
    targets,
)
from services.engagement.domain.stamps import StampCardRule, stamps_for
from services.engagement.domain.surprises import SurpriseRule, qualifies
from services.engagement.handlers import Context, apply_batch
from services.engagement.usecases.challenges import challenge_out
from services.engagement.usecases.rules import patched
from services.engagement.usecases.stamp_cards import stamp_card_out
from services.engagement.usecases.surprises import surprise_out
from shared.messaging import events
from shared.messaging.events import CloudEvent, new_event
from shared.messaging.outbox import CollectingSink
from shared.web.problems import Problem
from tests.support import factories
from tests.support.fakes.engagement import FakeEngagement

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
AT = NOW - timedelta(hours=1)
WINDOW = Window(NOW - timedelta(days=5), NOW + timedelta(days=30))
SEGMENT = "loyalty:perks"
KEY = b"the-unit-tests-surprise-secret-32-bytes"


def card(**changes: object) -> StampCardRule:
    fields: dict[str, object] = {
        "card_id": "perks-card",
        "name": "Third coffee free",
        "stamps_required": 3,
        "per": "purchase",
        "scope": Scope(),
        "reward": Reward(points=50),
        "window": WINDOW,
        "segment": SEGMENT,
    }
    fields.update(changes)
    return StampCardRule(**fields)  # type: ignore[arg-type]


def challenge(**changes: object) -> ChallengeRule:
    fields: dict[str, object] = {
        "challenge_id": "perks-challenge",
        "name": "Two visits",
        "goal": Goal("purchases", Decimal(2)),
        "window": WINDOW,
        "reward": Reward(points=100),
        "segment": SEGMENT,
    }
    fields.update(changes)
    return ChallengeRule(**fields)  # type: ignore[arg-type]


def surprise(**changes: object) -> SurpriseRule:
    fields: dict[str, object] = {
        "surprise_id": "perks-surprise",
        "name": "A coffee on us",
        "chance": Decimal(1),
        "reward": Reward(points=40),
        "scope": Scope(),
        "window": WINDOW,
        "segment": SEGMENT,
    }
    fields.update(changes)
    return SurpriseRule(**fields)  # type: ignore[arg-type]


def purchase(customer_id: str = "c1") -> Purchase:
    return Purchase("p1", customer_id, "bar", None, AT, Decimal("10.00"))


def segment_event(
    customer_id: str, entered: bool, at: datetime = AT, segment: str = SEGMENT
) -> CloudEvent:
    kind = events.SegmentEntered if entered else events.SegmentLeft
    payload = kind(customer_id=customer_id, segment=segment, changed_at=at, reasons=[])
    return new_event(payload, source="insights", subject=customer_id, time=at)


def bought(purchase_id: str, customer_id: str) -> CloudEvent:
    return factories.purchase(customer_id, "10.00", at=AT, purchase_id=purchase_id)


async def apply(repository: FakeEngagement, *batch: CloudEvent) -> list[CloudEvent]:
    sink = CollectingSink()
    await apply_batch(list(batch), Context(repository, sink, NOW, surprise_key=KEY))
    return [event for _, _, event in sink.events]


def rewarded(emitted: list[CloudEvent]) -> list[tuple[str, str]]:
    """(customer, rule) of each reward granted."""
    return sorted(
        (e.data["customer_id"], e.data["rule_id"])
        for e in emitted
        if e.type == events.ENGAGEMENT_REWARDED
    )


# The domain -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("min_tier", "tier", "segment", "member_tier", "segments", "expected"),
    [
        (None, None, None, None, (), True),
        (None, None, SEGMENT, "gold", (), False),
        (None, None, SEGMENT, None, (SEGMENT, "lifecycle:active"), True),
        (None, None, SEGMENT, None, ("loyalty:price",), False),
        ("silver", None, SEGMENT, "bronze", (SEGMENT,), False),
        ("silver", None, SEGMENT, "gold", (SEGMENT,), True),
        (None, "silver", None, "silver", (), True),
        (None, "silver", None, "gold", (), False),  # exactly: a gold member is not silver
        (None, "bronze", None, None, (), True),  # a tier not known yet is bronze
        (None, "bronze", None, "diamond", (), True),  # as is one the program does not know
        ("silver", "gold", "vip", "gold", ("vip",), True),
    ],
)
def test_a_rule_targets_a_member_by_tier_and_segment(
    min_tier: str | None,
    tier: str | None,
    segment: str | None,
    member_tier: str | None,
    segments: tuple[str, ...],
    expected: bool,
) -> None:
    rule = card(min_tier=min_tier, tier=tier, segment=segment)
    assert targets(rule, member_tier, frozenset(segments)) is expected


@pytest.mark.parametrize(
    "segment",
    ["", "Loyalty:perks", "loyalty:", "rfm:top", "a:b", "-vip", "x" * 64, "vip list", "vip\n"],
)
def test_a_segment_that_no_event_could_name_is_refused_by_name(segment: str) -> None:
    for make in (card, challenge, surprise):
        with pytest.raises(InvalidRule) as refused:
            make(segment=segment)
        assert refused.value.field == "segment"


def test_an_exact_tier_below_min_tier_is_refused_and_an_unknown_tier_too() -> None:
    with pytest.raises(InvalidRule) as refused:
        challenge(min_tier="gold", tier="silver")
    assert refused.value.field == "tier"
    with pytest.raises(InvalidRule) as unknown:
        surprise(tier="diamond")
    assert unknown.value.field == "tier"
    assert card(min_tier="gold", tier="gold", segment="tier:gold").tier == "gold"


def test_each_rule_kind_applies_only_inside_its_segment() -> None:
    inside, outside = frozenset({SEGMENT}), frozenset({"loyalty:price"})
    assert stamps_for(card(), purchase(), None, inside) == 1
    assert stamps_for(card(), purchase(), None, outside) == 0
    assert stamps_for(card(), purchase(), None) == 0  # in no segment known
    assert contribution_of(challenge(), purchase(), None, inside) is not None
    assert contribution_of(challenge(), purchase(), None, outside) is None
    referrals = challenge(goal=Goal("referrals", Decimal(1)))
    assert referral_contribution(referrals, "c9", AT, None, inside) is not None
    assert referral_contribution(referrals, "c9", AT, None, outside) is None
    assert qualifies(surprise(), purchase(), "gold", inside)
    assert not qualifies(surprise(), purchase(), "gold", outside)


def test_the_newest_change_of_a_membership_wins_and_leaving_wins_a_tie() -> None:
    entered = Membership("c1", SEGMENT, True, AT)
    left_later = Membership("c1", SEGMENT, False, AT + timedelta(minutes=1))
    left_same_instant = Membership("c1", SEGMENT, False, AT)
    other = Membership("c1", "vip", True, AT - timedelta(days=1))
    assert newest([entered, left_later, other]) == newest([other, left_later, entered])
    assert newest([left_later, entered])[("c1", SEGMENT)] is left_later
    assert newest([entered, left_same_instant])[("c1", SEGMENT)] is left_same_instant
    assert newest([left_same_instant, entered])[("c1", SEGMENT)] is left_same_instant
    assert newest([entered, other])[("c1", "vip")] is other


# The handler ------------------------------------------------------------------------------


async def test_a_targeted_card_stamps_a_member_inside_the_segment_and_skips_one_outside() -> None:
    repository = FakeEngagement(stamp_rules=[card(stamps_required=1)])
    await apply(repository, segment_event("inside", True), segment_event("left", True))
    await apply(repository, segment_event("left", False, AT + timedelta(minutes=1)))
    emitted = await apply(
        repository, bought("p1", "inside"), bought("p2", "outside"), bought("p3", "left")
    )
    assert rewarded(emitted) == [("inside", "perks-card")]
    assert {key[1] for key in repository.cards} == {"inside"}
    assert repository.calls.count("segments_of") == 1  # one read, for the purchases


async def test_a_segment_event_in_the_purchases_batch_counts_whatever_its_place() -> None:
    """Segments and purchases are on different topics: nothing orders one against the other,
    so the membership engagement holds when it applies the batch is what counts."""
    repository = FakeEngagement(
        challenge_rules=[challenge(goal=Goal("purchases", Decimal(1)))],
        surprise_rules=[surprise()],
    )
    emitted = await apply(repository, bought("p1", "c1"), segment_event("c1", True))
    assert rewarded(emitted) == [("c1", "perks-challenge"), ("c1", "perks-surprise")]
    assert repository.calls.index("note_segments") < repository.calls.index("segments_of")


async def test_a_member_outside_a_targeted_surprise_or_challenge_gets_nothing() -> None:
    repository = FakeEngagement(
        challenge_rules=[challenge(goal=Goal("purchases", Decimal(1)))],
        surprise_rules=[surprise(segment="vip")],
    )
    await apply(repository, segment_event("c1", True))  # in loyalty:perks, not in vip
    emitted = await apply(repository, bought("p1", "c1"), bought("p2", "c2"))
    assert rewarded(emitted) == [("c1", "perks-challenge")]


async def test_an_erasure_removes_the_members_segments_and_a_late_event_is_not_kept() -> None:
    repository = FakeEngagement(stamp_rules=[card()])
    await apply(repository, segment_event("c1", True), segment_event("c2", True))
    await apply(repository, factories.erasure("c1"))
    assert set(repository.memberships) == {("c2", SEGMENT)}
    await apply(repository, segment_event("c1", True, AT + timedelta(days=1)))
    assert set(repository.memberships) == {("c2", SEGMENT)}


_CHANGES = st.lists(
    st.tuples(
        st.sampled_from(["c1", "c2"]),
        st.sampled_from([SEGMENT, "vip"]),
        st.booleans(),
        st.integers(0, 5).map(lambda minutes: AT + timedelta(minutes=minutes)),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(_CHANGES, st.randoms(use_true_random=False), st.integers(1, 4))
def test_the_read_model_ends_at_the_newest_change_in_any_order_and_batches(
    changes: list[tuple[str, str, bool, datetime]], shuffler: Any, batches: int
) -> None:
    """Redelivered, reordered and split across batches: each (member, segment) ends at its
    newest change, as if each had been read once in order."""
    read = [segment_event(c, entered, at, segment) for c, segment, entered, at in changes]
    read += shuffler.sample(read, k=len(read) // 2)  # some redelivered
    shuffler.shuffle(read)
    repository = FakeEngagement()
    cut = max(1, -(-len(read) // batches))
    for start in range(0, len(read), cut):
        asyncio.run(apply(repository, *read[start : start + cut]))
    expected = newest(Membership(c, s, entered, at) for c, s, entered, at in changes)
    assert {k: (m.member, m.changed_at) for k, m in repository.memberships.items()} == {
        k: (m.member, m.changed_at) for k, m in expected.items()
    }
    inside = asyncio.run(repository.segments_of({"c1", "c2"}))
    assert inside == {
        c: frozenset(s for (c2, s), m in expected.items() if c2 == c and m.member)
        for c in {c for (c, _), m in expected.items() if m.member}
    }


# The API ----------------------------------------------------------------------------------

_START = {"starts_at": "2026-12-01T00:00:00Z"}
_BODIES: list[tuple[type[Any], dict[str, Any]]] = [
    (StampCardIn, {"name": "Card", "stamps_required": 3, "reward": {"points": 5}, **_START}),
    (
        ChallengeIn,
        {
            "name": "Challenge",
            "goal": {"kind": "purchases", "target": "2"},
            "reward": {"points": 5},
            "ends_at": "2026-12-31T00:00:00Z",
            **_START,
        },
    ),
    (SurpriseIn, {"name": "Surprise", "chance": "0.5", "reward": {"points": 5}, **_START}),
]


@pytest.mark.parametrize(("schema", "body"), _BODIES)
def test_a_rule_is_created_with_a_segment_and_an_exact_tier(
    schema: type[Any], body: dict[str, Any]
) -> None:
    made = schema.model_validate({**body, "segment": "lifecycle:at_risk", "tier": "gold"})
    assert (made.segment, made.tier) == ("lifecycle:at_risk", "gold")
    assert schema.model_validate(body).segment is None
    for wrong in ("Lifecycle:at_risk", "rfm:top", "a" * 80, 7):
        with pytest.raises(ValidationError) as refused:
            schema.model_validate({**body, "segment": wrong})
        assert refused.value.errors()[0]["loc"] == ("segment",)
    with pytest.raises(ValidationError):
        schema.model_validate({**body, "tier": "diamond"})


def test_the_rules_json_carries_its_targeting() -> None:
    assert stamp_card_out(card(tier="gold")).model_dump()["segment"] == SEGMENT
    assert stamp_card_out(card(tier="gold")).model_dump()["tier"] == "gold"
    assert challenge_out(challenge()).model_dump()["segment"] == SEGMENT
    assert surprise_out(surprise(segment=None)).model_dump()["segment"] is None


def test_a_patch_may_change_or_clear_a_rules_targeting() -> None:
    """Targeting is like min_tier: it says whom the next purchases read count for, not what
    members' progress means, so a rule in force may change it."""
    moved = patched("stamp-card", card(), StampCardPatchIn.model_validate({"segment": "vip"}))
    assert (moved.segment, moved.scope, moved.window) == ("vip", card().scope, WINDOW)
    cleared = patched("challenge", challenge(), ChallengePatchIn.model_validate({"segment": None}))
    assert cleared.segment is None and cleared.goal == challenge().goal
    exact = patched("surprise", surprise(), SurprisePatchIn.model_validate({"tier": "platinum"}))
    assert (exact.tier, exact.segment) == ("platinum", SEGMENT)
    with pytest.raises(Problem) as refused:
        patched(
            "surprise",
            surprise(min_tier="gold"),
            SurprisePatchIn.model_validate({"tier": "silver"}),
        )
    assert (refused.value.status, refused.value.detail[:5]) == (422, "tier:")
    with pytest.raises(ValidationError):
        StampCardPatchIn.model_validate({"segment": "Not A Segment"})
