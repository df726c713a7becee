"""The earning formula, campaigns and rule ids: pure rules, no I/O."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.points.domain.earning import (
    Campaign,
    Item,
    PurchaseFacts,
    campaign_flaw,
    parts_of,
    purchase_points,
)
from services.points.domain.model import Program

NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
PROGRAM = Program()
WEEKEND = (NOW - timedelta(days=1), NOW + timedelta(days=1))


def bought(
    total: str,
    items: list[Item] | None = None,
    *,
    partner_id: str = "demo",
    store_id: str | None = "s1",
    at: datetime = NOW,
) -> PurchaseFacts:
    return PurchaseFacts(
        partner_id=partner_id,
        store_id=store_id,
        occurred_at=at,
        total=Decimal(total),
        items=items or [],
    )


def campaign(campaign_id: str = "k1", **fields: object) -> Campaign:
    values: dict[str, object] = {
        "name": "double points",
        "starts_at": WEEKEND[0],
        "ends_at": WEEKEND[1],
        "multiplier": Decimal(2),
    }
    values.update(fields)
    return Campaign(campaign_id=campaign_id, **values)  # type: ignore[arg-type]


def coffee(quantity: str, price: str) -> Item:
    return Item("coffee", Decimal(quantity), Decimal(price))


def bread(quantity: str, price: str) -> Item:
    return Item("bread", Decimal(quantity), Decimal(price))


# -- the formula ----------------------------------------------------------------------------


def test_without_items_the_total_is_one_part_at_bronze() -> None:
    earning = purchase_points(PROGRAM, bought("49.99"), tier="bronze", campaigns=())
    assert earning.points == 49
    assert earning.rule_ids == ("base", "tier:bronze")


def test_the_tier_multiplies_and_rounds_once_at_the_end() -> None:
    # 10.10 * 1.25 = 12.625 -> 12; rounding each item first would lose more on many items.
    earning = purchase_points(PROGRAM, bought("10.10"), tier="silver", campaigns=())
    assert earning.points == 12
    parts = [coffee("1", "0.99")] * 5  # 4.95 * 1.25 = 6.1875: five floors of 1.2375 give 5
    assert purchase_points(PROGRAM, bought("4.95", parts), tier="silver", campaigns=()).points == 6


def test_a_customer_without_a_tier_earns_the_base_rate_and_no_tier_rule() -> None:
    earning = purchase_points(PROGRAM, bought("20.00"), tier=None, campaigns=())
    assert (earning.points, earning.rule_ids) == (20, ("base",))


def test_a_tier_the_program_does_not_name_earns_at_one() -> None:
    assert purchase_points(PROGRAM, bought("20.00"), tier="diamond", campaigns=()).points == 20


def test_a_lot_expires_after_the_program_validity_without_campaigns() -> None:
    earning = purchase_points(PROGRAM, bought("1.00"), tier=None, campaigns=())
    assert earning.expires_at == datetime(2027, 11, 22, 10, 15, tzinfo=UTC)


# -- sharing out ----------------------------------------------------------------------------


def test_a_basket_discount_is_shared_over_the_items_in_proportion() -> None:
    # Items worth 30 + 10 = 40 sold for 20: coffee gets 15, bread 5.
    parts = parts_of(Decimal("20.00"), [coffee("2", "15.00"), bread("1", "10.00")])
    assert [(p.category, p.amount) for p in parts] == [
        ("coffee", Fraction(15)),
        ("bread", Fraction(5)),
    ]


def test_items_worth_nothing_leave_the_total_as_one_part() -> None:
    parts = parts_of(Decimal("3.00"), [coffee("1", "0.00")])
    assert [(p.category, p.amount) for p in parts] == [(None, Fraction(3))]


items_strategy = st.lists(
    st.builds(
        Item,
        st.sampled_from(["coffee", "bread", None]),
        st.decimals(min_value=Decimal("0.001"), max_value=Decimal("10000"), places=3),
        st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=2),
    ),
    max_size=20,
)
totals = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2)


@given(totals, items_strategy)
def test_the_shares_of_the_items_add_up_to_the_total_exactly(
    total: Decimal, items: list[Item]
) -> None:
    parts = parts_of(total, items)
    assert sum((p.amount for p in parts), Fraction(0)) == Fraction(total)
    assert all(p.amount >= 0 for p in parts)


multipliers = st.decimals(min_value=Decimal("1"), max_value=Decimal("100"), places=2)
campaigns_strategy = st.lists(
    st.builds(
        campaign,
        st.text(alphabet="abc", min_size=1, max_size=3),
        multiplier=st.none() | multipliers,
        bonus=st.none() | st.integers(min_value=1, max_value=1000),
        category=st.sampled_from(["coffee", "bread", None]),
    ),
    max_size=4,
)
tiers = st.sampled_from([None, "bronze", "silver", "gold", "platinum"])


@given(totals, items_strategy, tiers, campaigns_strategy)
def test_points_are_never_negative_and_never_below_the_base(
    total: Decimal, items: list[Item], tier: str | None, campaigns: list[Campaign]
) -> None:
    facts = bought(str(total), items)
    earning = purchase_points(PROGRAM, facts, tier=tier, campaigns=campaigns)
    assert earning.points >= purchase_points(PROGRAM, facts, tier=None, campaigns=()).points >= 0
    assert earning.rule_ids[0] == "base"


@given(totals, totals, items_strategy, tiers, campaigns_strategy)
def test_points_are_monotone_in_the_amount(
    a: Decimal, b: Decimal, items: list[Item], tier: str | None, campaigns: list[Campaign]
) -> None:
    low, high = sorted((a, b))
    earn_low = purchase_points(PROGRAM, bought(str(low), items), tier=tier, campaigns=campaigns)
    earn_high = purchase_points(PROGRAM, bought(str(high), items), tier=tier, campaigns=campaigns)
    assert earn_low.points <= earn_high.points


@given(totals, items_strategy, tiers, campaigns_strategy)
def test_rounding_happens_once_at_the_end(
    total: Decimal, items: list[Item], tier: str | None, campaigns: list[Campaign]
) -> None:
    """The points are the floor of the exact sum: within one point of it, never above."""
    facts = bought(str(total), items)
    earning = purchase_points(PROGRAM, facts, tier=tier, campaigns=campaigns)
    tier_factor = Fraction(PROGRAM.tier_multipliers.get(tier or "bronze", Decimal(1)))
    exact = Fraction(0)
    bonuses = 0
    for part in parts_of(facts.total, facts.items):
        boost = Fraction(1)
        for c in campaigns:
            if c.multiplier is not None and c.category in (None, part.category):
                boost *= Fraction(c.multiplier)
        exact += part.amount * tier_factor * min(boost, Fraction(100))
    for c in campaigns:
        touches = any(c.category in (None, p.category) for p in parts_of(facts.total, facts.items))
        if c.bonus is not None and touches:
            bonuses += c.bonus
    assert exact + bonuses - 1 < earning.points <= exact + bonuses


# -- campaigns ------------------------------------------------------------------------------


def test_silver_with_double_points_on_coffee_boosts_only_the_coffee() -> None:
    facts = bought("30.00", [coffee("2", "5.00"), bread("1", "20.00")])
    double_coffee = campaign("coffee2x", category="coffee")
    earning = purchase_points(PROGRAM, facts, tier="silver", campaigns=[double_coffee])
    # coffee 10 * 1.25 * 2 = 25, bread 20 * 1.25 = 25
    assert earning.points == 50
    assert earning.rule_ids == ("base", "tier:silver", "campaign:coffee2x")


def test_multipliers_multiply_and_bonuses_add() -> None:
    campaigns = [
        campaign("a", multiplier=Decimal(2)),
        campaign("b", multiplier=Decimal("1.5")),
        campaign("c", multiplier=None, bonus=50),
    ]
    earning = purchase_points(PROGRAM, bought("10.00"), tier=None, campaigns=campaigns)
    assert earning.points == 10 * 3 + 50
    assert earning.rule_ids == ("base", "campaign:a", "campaign:b", "campaign:c")


def test_a_campaign_applies_by_when_the_purchase_was_made() -> None:
    running = campaign(starts_at=NOW, ends_at=NOW + timedelta(hours=1))
    assert purchase_points(PROGRAM, bought("10.00"), tier=None, campaigns=[running]).points == 20
    before = bought("10.00", at=NOW - timedelta(seconds=1))
    assert purchase_points(PROGRAM, before, tier=None, campaigns=[running]).points == 10
    at_the_end = bought("10.00", at=NOW + timedelta(hours=1))  # the end is excluded
    assert purchase_points(PROGRAM, at_the_end, tier=None, campaigns=[running]).points == 10


@pytest.mark.parametrize(
    ("scope", "applies"),
    [
        ({"partner_id": "demo"}, True),
        ({"partner_id": "other"}, False),
        ({"store_id": "s1"}, True),
        ({"store_id": "s2"}, False),
        ({"partner_id": "demo", "store_id": "s2"}, False),
    ],
)
def test_a_campaign_is_scoped_by_partner_and_store(scope: dict[str, str], applies: bool) -> None:
    earning = purchase_points(PROGRAM, bought("10.00"), tier=None, campaigns=[campaign(**scope)])
    assert earning.points == (20 if applies else 10)
    assert ("campaign:k1" in earning.rule_ids) is applies


def test_a_category_bonus_needs_an_item_of_that_category() -> None:
    bonus = campaign(multiplier=None, bonus=50, category="coffee")
    with_bread = bought("5.00", [bread("1", "5.00")])
    assert purchase_points(PROGRAM, with_bread, tier=None, campaigns=[bonus]).points == 5
    with_coffee = bought("5.00", [coffee("1", "5.00")])
    assert purchase_points(PROGRAM, with_coffee, tier=None, campaigns=[bonus]).points == 55


def test_a_campaign_validity_is_for_the_campaigns_share_only_the_longest_winning() -> None:
    campaigns = [campaign("a", validity_days=30), campaign("b", validity_days=90)]
    earning = purchase_points(PROGRAM, bought("10.00"), tier=None, campaigns=campaigns)
    # 10 base points keep the program's 12 months; the campaigns' 30 extra their own 90 days.
    assert (earning.points, earning.base_points, earning.campaign_points) == (40, 10, 30)
    assert earning.expires_at == datetime(2027, 11, 22, 10, 15, tzinfo=UTC)
    assert earning.campaign_expires_at == NOW + timedelta(days=90)
    assert earning.rule_ids == ("base",)
    assert earning.campaign_rule_ids == ("campaign:a", "campaign:b")


def test_a_short_campaign_validity_never_shortens_the_base_points_life() -> None:
    short = campaign("a", validity_days=7, multiplier=None, bonus=25)
    lasting = campaign("b", multiplier=Decimal("1.5"))
    earning = purchase_points(PROGRAM, bought("20.00"), tier="gold", campaigns=[short, lasting])
    # 20 * 1.5 (gold) * 1.5 = 45 for the purchase's lot; the bonus of 25 alone expires in 7 days.
    assert (earning.base_points, earning.campaign_points) == (45, 25)
    assert earning.expires_at == datetime(2027, 11, 22, 10, 15, tzinfo=UTC)
    assert earning.campaign_expires_at == NOW + timedelta(days=7)
    assert earning.rule_ids == ("base", "tier:gold", "campaign:b")


def test_a_campaign_that_does_not_apply_leaves_the_expiry_alone() -> None:
    other = campaign(partner_id="other", validity_days=30)
    earning = purchase_points(PROGRAM, bought("10.00"), tier=None, campaigns=[other])
    assert earning.expires_at == datetime(2027, 11, 22, 10, 15, tzinfo=UTC)


def test_the_product_of_campaign_multipliers_is_capped() -> None:
    campaigns = [campaign(c, multiplier=Decimal(100)) for c in "abc"]
    earning = purchase_points(PROGRAM, bought("100000.00"), tier="platinum", campaigns=campaigns)
    assert earning.points == 100000 * 2 * 100


def test_a_campaign_needs_an_effect_and_a_period() -> None:
    assert campaign_flaw(campaign()) is None
    assert campaign_flaw(campaign(multiplier=None)) == (
        "a campaign needs a multiplier, a bonus or both"
    )
    assert campaign_flaw(campaign(ends_at=WEEKEND[0])) == "starts_at must be before ends_at"
