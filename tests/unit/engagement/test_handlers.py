"""The engagement handler (`apply_batch`) on a fake repository: no database, no Kafka. Stamps
per purchase and per item, a full card's reward and message, redeliveries, refunds taking
stamps and completions back, challenges met once with their reward and badge, referrals,
erasure and tiers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.engagement.domain.challenges import ChallengeRule, Goal, challenge_grant_id
from services.engagement.domain.model import Reward, Scope, Window, purchase_key
from services.engagement.domain.stamps import Card, StampCardRule, completion_grant_id
from services.engagement.handlers import Context, apply_batch
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent, new_event
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.engagement import FakeEngagement

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
AT = NOW - timedelta(hours=1)  # when the purchases and refunds of a test happened
WINDOW = Window(NOW - timedelta(days=5), NOW + timedelta(days=30))
PARTNER = factories.PARTNER
CARD = "coffee-card"
REWARDED = events.ENGAGEMENT_REWARDED
REVOKED = events.ENGAGEMENT_REWARD_REVOKED


def card_rule(**changes: object) -> StampCardRule:
    fields: dict[str, object] = {
        "card_id": CARD,
        "name": "Third coffee free",
        "stamps_required": 3,
        "per": "purchase",
        "scope": Scope(),
        "reward": Reward(points=50),
        "window": WINDOW,
    }
    fields.update(changes)
    return StampCardRule(**fields)  # type: ignore[arg-type]


def challenge_rule(kind: str = "purchases", target: str = "3", **changes: object) -> ChallengeRule:
    fields: dict[str, object] = {
        "challenge_id": "autumn",
        "name": "Autumn explorer",
        "goal": Goal(kind, Decimal(target)),  # type: ignore[arg-type]
        "window": WINDOW,
        "reward": Reward(points=500),
        "badge": "Explorer",
    }
    fields.update(changes)
    return ChallengeRule(**fields)  # type: ignore[arg-type]


def coffee(quantity: int = 1, category: str = "coffee") -> events.PurchaseItem:
    return events.PurchaseItem(
        sku=f"sku-{category}",
        category=category,
        quantity=Decimal(quantity),
        unit_price=Decimal("3.00"),
    )


def bought(
    purchase_id: str, total: str = "10.00", customer_id: str = "c1", **fields: Any
) -> CloudEvent:
    return factories.purchase(customer_id, total, at=AT, purchase_id=purchase_id, **fields)


def refunded(purchase_id: str, amount: str, refund_id: str, customer_id: str = "c1") -> CloudEvent:
    return factories.refund(customer_id, purchase_id, amount, refund_id=refund_id, at=AT)


def tier_changed(customer_id: str, to_tier: str, from_tier: str = "bronze") -> CloudEvent:
    """A tier.changed event as tiers produces it."""
    payload = events.TierChanged(
        customer_id=customer_id,
        from_tier=from_tier,
        to_tier=to_tier,
        direction="up",
        reason="spend",
        effective_at=AT,
        review_at=AT + timedelta(days=365),
    )
    return new_event(payload, source="tiers", subject=customer_id, time=AT)


async def apply(repository: FakeEngagement, *batch: CloudEvent) -> list[CloudEvent]:
    """Applies one batch; the events it emitted, each checked to go to the engagement topic
    under its customer's key."""
    sink = CollectingSink()
    await apply_batch(list(batch), Context(repository, sink, NOW))
    for topic, key, event in sink.events:
        assert (topic, key) == (topics.ENGAGEMENT, event.subject)
    return [event for _, _, event in sink.events]


def of_type(emitted: list[CloudEvent], event_type: str) -> list[CloudEvent]:
    return [event for event in emitted if event.type == event_type]


def card_of(repository: FakeEngagement, card_id: str = CARD, customer_id: str = "c1") -> Card:
    return repository.cards[(card_id, customer_id)]


def stamps(repository: FakeEngagement, card_id: str = CARD) -> tuple[int, int]:
    """(stamps, completed_count) of c1's card."""
    card = card_of(repository, card_id)
    return card.stamps, card.completed_count


def grant_of(purchase_id: str, number: int = 1) -> str:
    return completion_grant_id(CARD, "c1", number, purchase_key(PARTNER, purchase_id))


# --- Stamps ------------------------------------------------------------------------------


async def test_a_purchase_gives_a_stamp_per_purchase_and_per_whole_item() -> None:
    per_item = card_rule(card_id="beans", per="item", scope=Scope(category="coffee"))
    repository = FakeEngagement(stamp_rules=[card_rule(stamps_required=10), per_item])
    emitted = await apply(repository, bought("p1", items=[coffee(2), coffee(1, "cake")]))
    assert emitted == []
    assert stamps(repository) == (1, 0)
    assert stamps(repository, "beans") == (2, 0)
    await apply(repository, bought("p2"))  # no items: nothing says it was coffee
    assert (stamps(repository), stamps(repository, "beans")) == ((2, 0), (2, 0))


async def test_purchases_outside_a_cards_window_scope_or_tier_give_no_stamp() -> None:
    repository = FakeEngagement(
        stamp_rules=[
            card_rule(card_id="bar", scope=Scope(partner_id="bar")),
            card_rule(card_id="silver", min_tier="silver"),
            card_rule(card_id="later", window=Window(NOW + timedelta(days=1))),
        ]
    )
    await apply(repository, bought("p1"))
    assert repository.cards == {}
    assert repository.stamp_purchases == {}


async def test_a_full_card_emits_one_reward_and_one_completion_with_the_same_grant_id() -> None:
    repository = FakeEngagement(stamp_rules=[card_rule()])
    await apply(repository, bought("p1"), bought("p2"))
    emitted = await apply(repository, bought("p3"), bought("p4"))
    assert stamps(repository) == (1, 1)
    [rewarded] = of_type(emitted, REWARDED)
    [completed] = of_type(emitted, events.STAMP_CARD_COMPLETED)
    assert len(emitted) == 2
    grant = events.EngagementRewarded.model_validate(rewarded.data)
    assert grant.grant_id == completed.data["grant_id"] == grant_of("p3")
    assert (grant.customer_id, grant.reason, grant.rule_id, grant.name) == (
        "c1",
        "stamp_card",
        CARD,
        "Third coffee free",
    )
    assert (grant.points, grant.reward_id, grant.purchase_id) == (50, None, "p3")
    assert grant.granted_at == AT
    message = events.StampCardCompleted.model_validate(completed.data)
    assert (message.card_id, message.completed_count, message.stamps_required) == (CARD, 1, 3)
    assert message.purchase_id == "p3"
    [stored] = repository.completions.values()
    assert (stored.completed.grant_id, stored.completed.number) == (grant_of("p3"), 1)
    assert stored.revoked_at is None


async def test_a_purchase_filling_several_cards_completes_each_with_its_own_grant() -> None:
    repository = FakeEngagement(stamp_rules=[card_rule(per="item")])
    emitted = await apply(repository, bought("p1", items=[coffee(7)]))
    assert stamps(repository) == (1, 2)
    grants = [event.data["grant_id"] for event in of_type(emitted, REWARDED)]
    assert grants == [grant_of("p1", 1), grant_of("p1", 2)]
    completed = of_type(emitted, events.STAMP_CARD_COMPLETED)
    assert [event.data["completed_count"] for event in completed] == [1, 2]


async def test_the_same_purchase_carried_again_gives_nothing() -> None:
    repository = FakeEngagement(stamp_rules=[card_rule()])
    first = bought("p1")
    # In one batch, as the same event and as another carrying the same purchase: once.
    assert await apply(repository, first, first, bought("p1")) == []
    assert stamps(repository) == (1, 0)
    # In later batches: nothing more, and a card it completed is not completed again.
    assert await apply(repository, first, bought("p1", total="99.00")) == []
    emitted = await apply(repository, bought("p2"), bought("p3"))
    assert stamps(repository) == (0, 1)
    assert len(of_type(emitted, REWARDED)) == 1
    assert await apply(repository, bought("p3"), bought("p2")) == []
    assert stamps(repository) == (0, 1)


async def test_the_same_purchase_id_at_another_partner_is_another_purchase() -> None:
    repository = FakeEngagement(stamp_rules=[card_rule()])
    await apply(repository, bought("p1"), bought("p1", partner_id="other"))
    assert stamps(repository) == (2, 0)


async def test_a_batch_costs_one_call_per_step_whatever_its_size() -> None:
    repository = FakeEngagement(stamp_rules=[card_rule()], challenge_rules=[challenge_rule()])
    await apply(repository, *(bought(f"p{n}") for n in range(30)))
    assert repository.calls.count("record_stamps") == 1
    assert repository.calls.count("lock_cards") == 1
    assert repository.calls.count("record_contributions") == 1
    assert stamps(repository) == (0, 10)


# --- Refunds on stamp cards --------------------------------------------------------------


async def test_a_refund_takes_stamps_from_the_current_card_first() -> None:
    repository = FakeEngagement(stamp_rules=[card_rule()])
    await apply(repository, *(bought(f"p{n}") for n in (1, 2, 3, 4)))
    assert stamps(repository) == (1, 1)
    # Half of p4 refunded: of its one stamp it keeps floor(0.5) = 0.
    assert await apply(repository, refunded("p4", "5.00", "r1")) == []
    assert stamps(repository) == (0, 1)
    assert repository.stamp_purchases[(CARD, purchase_key(PARTNER, "p4"))].refunded == Decimal(5)
    # The rest of p4 refunded: its stamp is gone already, nothing more is taken.
    assert await apply(repository, refunded("p4", "5.00", "r2")) == []
    assert stamps(repository) == (0, 1)


async def test_a_refund_the_current_card_lacks_revokes_the_newest_completion_once() -> None:
    repository = FakeEngagement(stamp_rules=[card_rule()])
    await apply(repository, *(bought(f"p{n}") for n in (1, 2, 3)))
    emitted = await apply(repository, refunded("p1", "10.00", "r1"))
    assert stamps(repository) == (2, 0)
    [revoked] = emitted
    assert revoked.type == REVOKED
    revocation = events.EngagementRewardRevoked.model_validate(revoked.data)
    assert (revocation.grant_id, revocation.customer_id) == (grant_of("p3"), "c1")
    assert (revocation.refund_id, revocation.revoked_at) == ("r1", AT)
    [stored] = repository.completions.values()
    assert stored.revoked_at == NOW
    # The same refund again (the same event, or another carrying it) changes nothing.
    state = (dict(repository.cards), dict(repository.stamp_purchases))
    again = refunded("p1", "10.00", "r1")
    assert await apply(repository, again, again) == []
    assert (dict(repository.cards), dict(repository.stamp_purchases)) == state


async def test_one_refund_in_a_batch_twice_takes_its_stamps_back_once() -> None:
    repository = FakeEngagement(stamp_rules=[card_rule(stamps_required=10, per="item")])
    await apply(repository, bought("p1", items=[coffee(4)]))
    refund = refunded("p1", "5.00", "r1")
    await apply(repository, refund, refunded("p1", "5.00", "r1"))
    assert stamps(repository) == (2, 0)


async def test_a_large_refund_revokes_the_newest_completions_first() -> None:
    repository = FakeEngagement(stamp_rules=[card_rule(per="item")])
    await apply(repository, bought("p1", items=[coffee(3)]), bought("p2", items=[coffee(4)]))
    assert stamps(repository) == (1, 2)
    emitted = await apply(repository, refunded("p2", "10.00", "r1"))
    # p2's four stamps: one from the current card, three reverse completion 2 (p2's).
    assert stamps(repository) == (0, 1)
    assert [event.data["grant_id"] for event in emitted] == [grant_of("p2", 2)]
    emitted = await apply(repository, refunded("p1", "10.00", "r2"))
    assert stamps(repository) == (0, 0)
    assert [event.data["grant_id"] for event in emitted] == [grant_of("p1", 1)]


async def test_a_card_completed_again_after_a_revocation_has_a_new_grant_id() -> None:
    repository = FakeEngagement(stamp_rules=[card_rule()])
    await apply(repository, *(bought(f"p{n}") for n in (1, 2, 3)))
    [revoked] = await apply(repository, refunded("p2", "10.00", "r1"))
    assert revoked.data["grant_id"] == grant_of("p3")
    emitted = await apply(repository, bought("p4"))
    assert stamps(repository) == (0, 1)
    [rewarded] = of_type(emitted, REWARDED)
    [completed] = of_type(emitted, events.STAMP_CARD_COMPLETED)
    assert rewarded.data["grant_id"] == completed.data["grant_id"] == grant_of("p4")
    assert grant_of("p4") != grant_of("p3")
    assert completed.data["completed_count"] == 1
    # A refund now revokes the standing completion: the new grant, not the revoked one.
    [again] = await apply(repository, refunded("p4", "10.00", "r2"))
    assert again.data["grant_id"] == grant_of("p4")
    assert {s.completed.grant_id for s in repository.completions.values()} == {
        grant_of("p3"),
        grant_of("p4"),
    }
    assert all(s.revoked_at is not None for s in repository.completions.values())


refund_shares = st.sampled_from(("0.01", "2.50", "5.00", "9.99", "10.00"))
operations = st.lists(
    st.one_of(
        st.tuples(st.just("buy"), st.integers(min_value=0, max_value=5), st.just("")),
        st.tuples(st.just("refund"), st.integers(min_value=0, max_value=12), refund_shares),
    ),
    max_size=16,
)


@settings(max_examples=60, deadline=None)
@given(required=st.integers(min_value=1, max_value=4), ops=operations)
def test_grants_are_never_reused_and_a_grant_is_revoked_at_most_once_after_it_was_made(
    required: int, ops: list[tuple[str, int, str]]
) -> None:
    """Whatever purchases (of any number of stamps) and refunds (of any of them, any share,
    repeated) come, one per batch: every reward event has a new grant id, every revocation
    names a grant rewarded before and not revoked yet, and the card's completed_count is what
    was granted and not revoked."""
    asyncio.run(_grants_are_never_reused(required, ops))


async def _grants_are_never_reused(required: int, ops: list[tuple[str, int, str]]) -> None:
    repository = FakeEngagement(stamp_rules=[card_rule(stamps_required=required, per="item")])
    granted: list[str] = []
    revoked: list[str] = []
    bought_ids: list[str] = []
    for n, (op, amount, share) in enumerate(ops):
        if op == "buy":
            bought_ids.append(f"p{n}")
            event = bought(f"p{n}", items=[coffee(amount)] if amount else [])
        elif bought_ids:
            # The same purchase and share again is the same refund delivered again.
            purchase_id = bought_ids[amount % len(bought_ids)]
            event = refunded(purchase_id, share, f"r-{purchase_id}-{share}")
        else:
            continue
        for emitted in await apply(repository, event):
            if emitted.type == REWARDED:
                assert emitted.data["grant_id"] not in granted
                granted.append(emitted.data["grant_id"])
            elif emitted.type == REVOKED:
                assert emitted.data["grant_id"] in granted
                assert emitted.data["grant_id"] not in revoked
                revoked.append(emitted.data["grant_id"])
        card = repository.cards.get((CARD, "c1"), Card(CARD, "c1"))
        assert 0 <= card.stamps < required
        assert card.completed_count == len(granted) - len(revoked)


# --- Challenges --------------------------------------------------------------------------


async def test_a_challenge_progresses_and_is_met_once_with_its_reward_and_badge() -> None:
    repository = FakeEngagement(challenge_rules=[challenge_rule()])
    assert await apply(repository, bought("p1"), bought("p2")) == []
    assert repository.progress == {("autumn", "c1"): None}
    emitted = await apply(repository, bought("p3"))
    assert [event.type for event in emitted] == [
        REWARDED,
        events.CHALLENGE_COMPLETED,
        events.BADGE_EARNED,
    ]
    rewarded, completed, badge = emitted
    grant = events.EngagementRewarded.model_validate(rewarded.data)
    assert grant.grant_id == challenge_grant_id("autumn", "c1")
    assert (grant.reason, grant.rule_id, grant.points, grant.purchase_id) == (
        "challenge",
        "autumn",
        500,
        None,
    )
    message = events.ChallengeCompleted.model_validate(completed.data)
    assert (message.challenge_id, message.badge, message.grant_id) == (
        "autumn",
        "Explorer",
        grant.grant_id,
    )
    assert message.completed_at == AT
    earned = events.BadgeEarned.model_validate(badge.data)
    assert (earned.badge, earned.challenge_id, earned.earned_at) == ("Explorer", "autumn", AT)
    assert repository.progress == {("autumn", "c1"): NOW}
    # Met, it stays met: more purchases, or the same again, announce nothing.
    assert await apply(repository, bought("p4"), bought("p3")) == []


async def test_a_challenge_met_within_one_batch_is_announced_once() -> None:
    repository = FakeEngagement(challenge_rules=[challenge_rule()])
    emitted = await apply(repository, *(bought(f"p{n}") for n in range(5)))
    assert len(of_type(emitted, REWARDED)) == 1
    assert len(of_type(emitted, events.CHALLENGE_COMPLETED)) == 1
    assert len(of_type(emitted, events.BADGE_EARNED)) == 1


async def test_a_badge_already_held_is_not_announced_again() -> None:
    first = challenge_rule()
    second = challenge_rule(challenge_id="winter", name="Winter explorer", target="4")
    repository = FakeEngagement(challenge_rules=[first, second])
    emitted = await apply(repository, *(bought(f"p{n}") for n in range(3)))
    assert [e.data["challenge_id"] for e in of_type(emitted, events.BADGE_EARNED)] == ["autumn"]
    emitted = await apply(repository, bought("p3"))
    assert [event.type for event in emitted] == [REWARDED, events.CHALLENGE_COMPLETED]
    assert emitted[0].data["grant_id"] == challenge_grant_id("winter", "c1")
    assert emitted[1].data["badge"] == "Explorer"
    assert list(repository.badges) == [("c1", "Explorer")]
    assert repository.badges[("c1", "Explorer")].challenge_id == "autumn"


async def test_a_challenge_without_a_reward_grants_nothing_but_its_badge() -> None:
    repository = FakeEngagement(challenge_rules=[challenge_rule(target="1", reward=None)])
    emitted = await apply(repository, bought("p1"))
    assert [event.type for event in emitted] == [events.CHALLENGE_COMPLETED, events.BADGE_EARNED]
    assert emitted[0].data["grant_id"] is None


async def test_refunds_take_progress_back_until_the_challenge_is_met() -> None:
    repository = FakeEngagement(challenge_rules=[challenge_rule("spend", "30.00")])
    await apply(repository, bought("p1", "20.00"))
    assert await apply(repository, refunded("p1", "10.00", "r1")) == []
    assert await apply(repository, refunded("p1", "10.00", "r1")) == []  # delivered again
    # 10.00 kept of p1: 15.00 more is 25.00, short of 30.00; 5.00 more meets it.
    assert await apply(repository, bought("p2", "15.00")) == []
    assert repository.progress == {("autumn", "c1"): None}
    emitted = await apply(repository, bought("p3", "5.00"))
    assert len(of_type(emitted, events.CHALLENGE_COMPLETED)) == 1
    # Met, it stays met: a refund now changes neither its progress nor its reward.
    before = {k: s.refunded for k, s in repository.contributions.items()}
    assert await apply(repository, refunded("p2", "15.00", "r2")) == []
    assert {k: s.refunded for k, s in repository.contributions.items()} == before
    assert repository.progress == {("autumn", "c1"): NOW}


async def test_a_wholly_refunded_purchase_no_longer_counts() -> None:
    repository = FakeEngagement(challenge_rules=[challenge_rule(target="2")])
    await apply(repository, bought("p1"))
    await apply(repository, refunded("p1", "10.00", "r1"))
    assert await apply(repository, bought("p2")) == []
    assert len(await apply(repository, bought("p3"))) == 3


async def test_a_referral_counts_once_the_referred_member_buys_and_not_before() -> None:
    referrals = challenge_rule("referrals", "2", challenge_id="friends", badge=None)
    repository = FakeEngagement(challenge_rules=[referrals, challenge_rule(target="1")])
    enrolled = [
        factories.enrolment(member, at=AT, referred_by="c1") for member in ("m1", "m1", "m2")
    ]
    assert await apply(repository, enrolled[0], enrolled[1]) == []
    assert repository.contributions == {}  # a friend who never buys farms nothing
    await apply(repository, bought("m1-a", customer_id="m1"), bought("m1-b", customer_id="m1"))
    first = purchase_key(factories.PARTNER, "m1-a")
    assert ("friends", "c1", first) in repository.contributions  # the first purchase only
    assert ("friends", "c1", purchase_key(factories.PARTNER, "m1-b")) not in (
        repository.contributions
    )
    # m2's purchase read before its enrolment (two topics): it counts once both are known.
    await apply(repository, bought("m2-a", customer_id="m2"))
    emitted = await apply(repository, enrolled[2])
    [rewarded] = of_type(emitted, REWARDED)
    assert rewarded.data["grant_id"] == challenge_grant_id("friends", "c1")
    assert rewarded.subject == "c1"  # the referrer's reward
    assert of_type(emitted, events.BADGE_EARNED) == []
    assert ("autumn", "c1") not in repository.progress  # a referral is no purchase of c1


async def test_a_wholly_refunded_first_purchase_takes_the_referral_back() -> None:
    referrals = challenge_rule("referrals", "2", challenge_id="friends", badge=None)
    repository = FakeEngagement(challenge_rules=[referrals])
    await apply(
        repository,
        factories.enrolment("m1", at=AT, referred_by="c1"),
        bought("m1-a", customer_id="m1"),
    )
    await apply(repository, refunded("m1-a", "10.00", "r1", customer_id="m1"))
    await apply(
        repository,
        factories.enrolment("m2", at=AT, referred_by="c1"),
        bought("m2-a", customer_id="m2"),
    )
    assert repository.progress[("friends", "c1")] is None  # one referral kept of two


# --- Members: erasure and tiers ----------------------------------------------------------


async def test_an_erasure_removes_the_members_state() -> None:
    repository = FakeEngagement(stamp_rules=[card_rule()], challenge_rules=[challenge_rule()])
    other = bought("q1", customer_id="c2")
    await apply(repository, factories.enrolment("c1", at=AT), other)
    await apply(repository, *(bought(f"p{n}") for n in range(4)), refunded("p0", "1.00", "r1"))
    assert repository.completions and repository.badges and repository.refunds_seen
    await apply(repository, factories.erasure("c1", at=AT))
    customers = {
        *repository.members,
        *(c for _, c in repository.cards),
        *(p.customer_id for p in repository.stamp_purchases.values()),
        *(s.completed.customer_id for s in repository.completions.values()),
        *repository.refunds_seen.values(),
        *(c for _, c, _ in repository.contributions),
        *(c for _, c in repository.progress),
        *(c for c, _ in repository.badges),
    }
    assert customers == {"c2"}


async def test_a_tier_change_gates_the_rules_with_a_minimum_tier() -> None:
    repository = FakeEngagement(
        stamp_rules=[card_rule(min_tier="silver")],
        challenge_rules=[challenge_rule(target="1", min_tier="gold")],
    )
    await apply(repository, factories.enrolment("c1", at=AT), bought("p1"))
    assert repository.cards == {} and repository.progress == {}
    await apply(repository, tier_changed("c1", "silver"))
    assert repository.members["c1"].tier == "silver"
    assert await apply(repository, bought("p2")) == []
    assert stamps(repository) == (1, 0)
    assert repository.progress == {}
    await apply(repository, tier_changed("c1", "gold", from_tier="silver"))
    emitted = await apply(repository, bought("p3"))
    assert stamps(repository) == (2, 0)
    assert len(of_type(emitted, events.CHALLENGE_COMPLETED)) == 1
    await apply(repository, tier_changed("c1", "bronze", from_tier="gold"))
    await apply(repository, bought("p4"))
    assert stamps(repository) == (2, 0)
