"""Challenges: goals and their validation, what counts towards them, refunds taking progress
back, and the member's progress for each kind of goal."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.engagement.domain.challenges import (
    GOAL_KINDS,
    ChallengeRule,
    Contribution,
    Goal,
    after_refund,
    challenge_grant_id,
    contribution_of,
    is_met,
    progress,
    referral_contribution,
    week_index,
)
from services.engagement.domain.ids import derived_id
from services.engagement.domain.model import InvalidRule, Item, Purchase, Reward, Window

START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # a Monday
END = START + timedelta(days=70)


def challenge(kind: str = "purchases", target: str = "3", **changes: object) -> ChallengeRule:
    goal_fields = {k: changes.pop(k) for k in ("category", "partner_id") if k in changes}
    fields: dict[str, object] = {
        "challenge_id": "autumn",
        "name": "Autumn explorer",
        "goal": Goal(kind, Decimal(target), **goal_fields),  # type: ignore[arg-type]
        "window": Window(START, END),
        "reward": Reward(points=500),
        "badge": "Explorer",
    }
    fields.update(changes)
    return ChallengeRule(**fields)  # type: ignore[arg-type]


def item(category: str | None, quantity: str = "1", unit_price: str = "5.00") -> Item:
    return Item(f"sku-{category}", category, Decimal(quantity), Decimal(unit_price))


def purchase(
    purchase_id: str = "p1",
    *items: Item,
    total: str = "10.00",
    partner_id: str = "bar",
    at: datetime = START + timedelta(days=1),
) -> Purchase:
    return Purchase(purchase_id, "c1", partner_id, None, at, Decimal(total), items)


def contribution(
    source_id: str,
    amount: str = "10.00",
    *,
    at: datetime = START,
    partner_id: str | None = "bar",
    categories: frozenset[str] = frozenset(),
    share: str = "0",
) -> Contribution:
    return Contribution(source_id, at, Decimal(amount), partner_id, categories, Decimal(share))


# --- The rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "target", "goal_fields", "field"),
    [
        ("visits", "3", {}, "goal.kind"),
        ("purchases", "0", {}, "goal.target"),
        ("purchases", "-1", {}, "goal.target"),
        ("purchases", "2.5", {}, "goal.target"),
        ("streak_weeks", "1.5", {}, "goal.target"),
        ("spend", "100.001", {}, "goal.target"),
        ("spend", "NaN", {}, "goal.target"),
        ("spend", "Infinity", {}, "goal.target"),
        ("spend", "1000000001", {}, "goal.target"),
        ("referrals", "2", {"category": "coffee"}, "goal.category"),
        ("referrals", "2", {"partner_id": "bar"}, "goal.partner_id"),
        ("distinct_partners", "2", {"partner_id": "bar"}, "goal.partner_id"),
        ("categories", "2", {"category": "coffee"}, "goal.category"),
        ("spend", "20", {"partner_id": "a bar"}, "goal.partner_id"),
        ("spend", "20", {"category": ""}, "goal.category"),
    ],
)
def test_a_goal_that_cannot_hold_names_its_field(
    kind: str, target: str, goal_fields: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidRule) as error:
        Goal(kind, Decimal(target), **goal_fields)  # type: ignore[arg-type]
    assert error.value.field == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"challenge_id": "autumn 2026"}, "challenge_id"),
        ({"name": ""}, "name"),
        ({"badge": "\x00"}, "badge"),
        ({"min_tier": "diamond"}, "min_tier"),
        ({"window": Window(START)}, "ends_at"),
        ({"reward": None, "badge": None}, "reward"),
    ],
)
def test_a_challenge_that_cannot_hold_names_its_field(
    changes: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidRule) as error:
        challenge("purchases", "3", **changes)
    assert error.value.field == field


def test_a_challenge_may_grant_only_a_badge_or_only_a_reward() -> None:
    assert challenge(reward=None).badge == "Explorer"
    assert challenge(badge=None).reward == Reward(points=500)
    assert challenge("spend", "99.50").goal.target == Decimal("99.50")


# --- What counts -------------------------------------------------------------------------


def test_a_purchase_contributes_its_total_partner_and_categories() -> None:
    bought = purchase("p1", item("coffee"), item("cake"), item(None))
    assert contribution_of(challenge(), bought, None) == Contribution(
        source_id="bar:p1",
        occurred_at=bought.occurred_at,
        amount=Decimal("10.00"),
        partner_id="bar",
        categories=frozenset({"coffee", "cake"}),
    )


def test_only_activity_inside_the_window_counts() -> None:
    rule = challenge()
    assert contribution_of(rule, purchase(at=START), None) is not None
    assert contribution_of(rule, purchase(at=START - timedelta(seconds=1)), None) is None
    assert contribution_of(rule, purchase(at=END), None) is None
    assert referral_contribution(challenge("referrals"), "c9", END, None) is None


def test_members_below_the_minimum_tier_do_not_progress() -> None:
    gold = challenge(min_tier="gold")
    assert contribution_of(gold, purchase(), "silver") is None
    assert contribution_of(gold, purchase(), None) is None
    assert contribution_of(gold, purchase(), "gold") is not None
    referrals = challenge("referrals", min_tier="gold")
    assert referral_contribution(referrals, "c9", START, "silver") is None
    assert referral_contribution(referrals, "c9", START, "platinum") is not None


def test_a_goal_at_a_partner_counts_only_its_purchases() -> None:
    at_bar = challenge(partner_id="bar")
    assert contribution_of(at_bar, purchase(partner_id="bar"), None) is not None
    assert contribution_of(at_bar, purchase(partner_id="shop"), None) is None


def test_a_goal_of_a_category_counts_its_lines_only() -> None:
    coffee = challenge("spend", "50", category="coffee")
    bought = purchase("p1", item("coffee", "2", "3.00"), item("cake", "1", "4.00"), total="10.00")
    found = contribution_of(coffee, bought, None)
    assert found is not None
    assert (found.amount, found.categories) == (Decimal("6.00"), frozenset({"coffee"}))
    assert contribution_of(coffee, purchase("p2", item("cake")), None) is None
    assert contribution_of(coffee, purchase("p3"), None) is None


def test_a_category_never_counts_more_than_the_purchase_total() -> None:
    coffee = challenge("spend", "50", category="coffee")
    discounted = purchase("p1", item("coffee", "2", "3.00"), total="5.00")
    found = contribution_of(coffee, discounted, None)
    assert found is not None and found.amount == Decimal("5.00")


def test_purchases_do_not_count_for_referrals_nor_referrals_for_purchases() -> None:
    assert contribution_of(challenge("referrals"), purchase(), None) is None
    assert referral_contribution(challenge("purchases"), "c9", START, None) is None
    found = referral_contribution(challenge("referrals"), "c9", START, None)
    assert found == Contribution("c9", START, Decimal(0), None, frozenset())


def test_purchase_ids_of_different_partners_are_different_sources() -> None:
    rule = challenge()
    one = contribution_of(rule, purchase("p1", partner_id="bar"), None)
    other = contribution_of(rule, purchase("p1", partner_id="shop"), None)
    assert one is not None and other is not None
    assert progress(rule, [one, other]) == 2


def test_a_refund_updates_the_refunded_share() -> None:
    c = contribution("bar:p1", "10.00")
    assert after_refund(c, Decimal("10.00"), Decimal("2.50")).refunded_share == Decimal("0.25")
    assert after_refund(c, Decimal("10.00"), Decimal("10.00")).refunded_share == 1
    assert after_refund(c, Decimal("10.00"), Decimal("10.00")).kept is False


# --- Progress ----------------------------------------------------------------------------


def test_purchases_count_those_not_wholly_refunded() -> None:
    rule = challenge("purchases", "3")
    contributions = [
        contribution("a"),
        contribution("b", share="0.5"),
        contribution("c", share="1"),
    ]
    assert progress(rule, contributions) == 2
    assert not is_met(rule, contributions)
    assert is_met(rule, [*contributions, contribution("d")])


def test_spend_is_the_amounts_less_their_refunded_shares() -> None:
    rule = challenge("spend", "30")
    contributions = [contribution("a", "20.00"), contribution("b", "10.00", share="0.25")]
    assert progress(rule, contributions) == Decimal("27.50")
    assert not is_met(rule, contributions)
    assert is_met(rule, [*contributions, contribution("c", "2.50")])


def test_spend_after_a_third_refunded_is_exact_to_the_cent() -> None:
    rule = challenge("spend", "200")
    bought = contribution_of(rule, purchase("p1", total="300.00"), None)
    assert bought is not None
    refunded = after_refund(bought, Decimal("300.00"), Decimal("100.00"))
    assert progress(rule, [refunded]) == Decimal("200.00")
    assert is_met(rule, [refunded])
    two_thirds = after_refund(bought, Decimal("300.00"), Decimal("200.00"))
    assert progress(challenge("spend", "100"), [two_thirds]) == Decimal("100.00")
    assert is_met(challenge("spend", "100"), [two_thirds])


def test_distinct_partners_and_categories_count_those_not_wholly_refunded() -> None:
    partners = challenge("distinct_partners", "3")
    contributions = [
        contribution("a", partner_id="bar", categories=frozenset({"coffee"})),
        contribution("b", partner_id="bar", categories=frozenset({"coffee", "cake"})),
        contribution("c", partner_id="shop", categories=frozenset({"books"}), share="1"),
        contribution("d", partner_id="deli", categories=frozenset()),
    ]
    assert progress(partners, contributions) == 2
    assert progress(challenge("categories", "3"), contributions) == 2


def test_referrals_count() -> None:
    rule = challenge("referrals", "2")
    referred = [
        c for m in ("c7", "c8") if (c := referral_contribution(rule, m, START, None)) is not None
    ]
    assert progress(rule, referred) == 2
    assert is_met(rule, referred)


def test_a_streak_is_the_longest_run_of_consecutive_iso_weeks() -> None:
    rule = challenge("streak_weeks", "3")
    week = timedelta(weeks=1)
    contributions = [
        contribution("a", at=START),
        contribution("b", at=START + timedelta(days=6, hours=23)),  # Sunday: the same week
        contribution("c", at=START + week),
        contribution("d", at=START + 3 * week),
        contribution("e", at=START + 4 * week),
        contribution("f", at=START + 5 * week, share="1"),  # refunded whole: no longer counts
    ]
    assert progress(rule, contributions) == 2
    assert not is_met(rule, contributions)
    assert progress(rule, [*contributions, contribution("g", at=START + 2 * week)]) == 5


def test_a_streak_week_is_a_utc_week() -> None:
    helsinki = timezone(timedelta(hours=2))
    monday_early = datetime(2026, 11, 9, 1, 0, tzinfo=helsinki)  # Sunday 23:00 UTC
    assert week_index(monday_early) == week_index(START)
    assert week_index(START + timedelta(weeks=1)) == week_index(START) + 1
    new_year = datetime(2027, 1, 4, tzinfo=UTC)  # ISO week 1 of 2027 follows week 53 of 2026
    assert week_index(new_year) == week_index(new_year - timedelta(days=1)) + 1


def test_one_contribution_counts_per_source_the_last_given() -> None:
    rule = challenge("spend", "100")
    first = contribution("a", "40.00")
    assert progress(rule, [first, first]) == Decimal("40.00")
    assert progress(rule, [first, after_refund(first, Decimal(40), Decimal(10))]) == Decimal(
        "30.00"
    )


def test_no_contributions_no_progress() -> None:
    for kind in GOAL_KINDS:
        assert progress(challenge(kind), []) == 0


def test_a_challenges_grant_is_once_per_member_and_challenge() -> None:
    grant = challenge_grant_id("autumn", "c1")
    assert grant == challenge_grant_id("autumn", "c1") == derived_id("challenge", "autumn", "c1")
    assert grant != challenge_grant_id("autumn", "c2")
    assert grant != challenge_grant_id("winter", "c1")


# --- Invariants --------------------------------------------------------------------------

shares = st.sampled_from(["0", "0.25", "0.5", "0.999", "1"]) | st.decimals(
    min_value=0, max_value=1, places=4
).map(str)
contributions_strategy = st.lists(
    st.builds(
        lambda amount, days, partner, categories, share: (amount, days, partner, categories, share),
        st.decimals(min_value=0, max_value=10_000, places=2),
        st.integers(min_value=0, max_value=69),
        st.sampled_from([None, "bar", "shop", "deli"]),
        st.frozensets(st.sampled_from(["coffee", "cake", "books"]), max_size=3),
        shares,
    ),
    max_size=12,
)


def as_contributions(
    drawn: list[tuple[Decimal, int, str | None, frozenset[str], str]],
) -> list[Contribution]:
    return [
        Contribution(
            f"s{n}", START + timedelta(days=days), amount, partner, categories, Decimal(share)
        )
        for n, (amount, days, partner, categories, share) in enumerate(drawn)
    ]


@given(kind=st.sampled_from(GOAL_KINDS), drawn=contributions_strategy, extra=contributions_strategy)
def test_progress_is_never_negative_and_never_falls_with_more_contributions(
    kind: str,
    drawn: list[tuple[Decimal, int, str | None, frozenset[str], str]],
    extra: list[tuple[Decimal, int, str | None, frozenset[str], str]],
) -> None:
    rule = challenge(kind, "5")
    everything = as_contributions(drawn + extra)
    fewer = everything[: len(drawn)]
    assert progress(rule, fewer) >= 0
    assert progress(rule, everything) >= progress(rule, fewer)
    if is_met(rule, fewer):
        assert is_met(rule, everything)


@given(kind=st.sampled_from(GOAL_KINDS), drawn=contributions_strategy)
def test_refunding_never_raises_progress(
    kind: str, drawn: list[tuple[Decimal, int, str | None, frozenset[str], str]]
) -> None:
    rule = challenge(kind, "5")
    contributions = as_contributions(drawn)
    refunded = [after_refund(c, Decimal(100), Decimal(100)) for c in contributions[:1]]
    assert progress(rule, contributions + refunded) <= progress(rule, contributions)
