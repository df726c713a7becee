"""What engagement's rules share: tiers, scope, window, reward, refunded share, derived ids."""

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.engagement.domain.ids import derived_id
from services.engagement.domain.model import (
    TIERS,
    InvalidRule,
    Item,
    Purchase,
    Reward,
    Scope,
    Window,
    purchase_key,
    refund_key,
    refunded_share,
    tier_at_least,
)
from services.points.domain.refunds import purchase_key as points_purchase_key
from shared.bounds import IDENTIFIER_PATTERN, MAX_ID_LENGTH, MAX_POINTS

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def purchase(**changes: object) -> Purchase:
    fields: dict[str, object] = {
        "purchase_id": "p1",
        "customer_id": "c1",
        "partner_id": "bar",
        "store_id": "s1",
        "occurred_at": START,
        "total": Decimal("10.00"),
    }
    fields.update(changes)
    return Purchase(**fields)  # type: ignore[arg-type]


# --- Tiers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "min_tier", "expected"),
    [
        (None, None, True),
        ("bronze", None, True),
        (None, "bronze", True),
        (None, "silver", False),
        ("silver", "silver", True),
        ("gold", "silver", True),
        ("silver", "gold", False),
        ("platinum", "platinum", True),
        ("diamond", "silver", False),  # a tier the program does not know ranks as bronze
        ("diamond", "bronze", True),
    ],
)
def test_a_tier_reaches_the_rules_minimum(
    tier: str | None, min_tier: str | None, expected: bool
) -> None:
    assert tier_at_least(tier, min_tier) is expected


def test_an_unknown_minimum_tier_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidRule) as error:
        tier_at_least("gold", "diamond")
    assert error.value.field == "min_tier"


@given(st.sampled_from((None, *TIERS)), st.sampled_from(TIERS), st.sampled_from(TIERS))
def test_tiers_are_ordered(tier: str | None, low: str, high: str) -> None:
    if TIERS.index(low) <= TIERS.index(high) and tier_at_least(tier, high):
        assert tier_at_least(tier, low)


# --- Scope, window, reward ---------------------------------------------------------------


def test_a_scope_places_a_purchase_by_partner_and_store() -> None:
    assert Scope().places(purchase())
    assert Scope(partner_id="bar").places(purchase())
    assert Scope(partner_id="bar", store_id="s1").places(purchase())
    assert not Scope(partner_id="shop").places(purchase())
    assert not Scope(store_id="s2").places(purchase())
    assert not Scope(store_id="s1").places(purchase(store_id=None))


@pytest.mark.parametrize(
    ("scope", "field"),
    [
        ({"partner_id": ""}, "partner_id"),
        ({"partner_id": "a b"}, "partner_id"),
        ({"partner_id": "bar\n"}, "partner_id"),
        ({"store_id": "x" * (MAX_ID_LENGTH + 1)}, "store_id"),
        ({"category": ""}, "category"),
        ({"category": "tea\n"}, "category"),
    ],
)
def test_a_scope_refuses_what_cannot_be_an_id_or_a_label(scope: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidRule) as error:
        Scope(**scope)
    assert error.value.field == field


def test_a_window_includes_its_start_and_excludes_its_end() -> None:
    window = Window(START, START + timedelta(days=7))
    assert window.contains(START)
    assert window.contains(START + timedelta(days=7) - timedelta(microseconds=1))
    assert not window.contains(START + timedelta(days=7))
    assert not window.contains(START - timedelta(microseconds=1))
    assert Window(START).contains(START + timedelta(days=3650))


def test_a_window_compares_instants_whatever_their_offset() -> None:
    helsinki = timezone(timedelta(hours=2))
    window = Window(START, START + timedelta(hours=1))
    assert window.contains(datetime(2026, 11, 2, 11, 30, tzinfo=helsinki))
    assert not window.contains(datetime(2026, 11, 2, 10, 30, tzinfo=helsinki))


@pytest.mark.parametrize(
    ("starts_at", "ends_at", "field"),
    [
        (datetime(2026, 11, 2), None, "starts_at"),  # noqa: DTZ001 - naive on purpose
        (START, datetime(2026, 12, 2), "ends_at"),  # noqa: DTZ001 - naive on purpose
        (START, START, "ends_at"),
        (START, START - timedelta(days=1), "ends_at"),
    ],
)
def test_a_window_is_aware_and_ends_after_it_starts(
    starts_at: datetime, ends_at: datetime | None, field: str
) -> None:
    with pytest.raises(InvalidRule) as error:
        Window(starts_at, ends_at)
    assert error.value.field == field
    assert isinstance(error.value, ValueError)
    assert str(error.value).startswith(f"{field}: ")


def test_a_reward_is_points_or_a_reward_id() -> None:
    assert Reward(points=50).points == 50
    assert Reward(reward_id="free-coffee").reward_id == "free-coffee"
    assert Reward(points=MAX_POINTS).points == MAX_POINTS


@pytest.mark.parametrize(
    ("reward", "field"),
    [
        ({}, "reward"),
        ({"points": 5, "reward_id": "free-coffee"}, "reward"),
        ({"points": 0}, "reward.points"),
        ({"points": -5}, "reward.points"),
        ({"points": MAX_POINTS + 1}, "reward.points"),
        ({"points": True}, "reward.points"),
        ({"reward_id": "free coffee"}, "reward.reward_id"),
    ],
)
def test_a_reward_that_cannot_be_granted_is_refused(reward: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRule) as error:
        Reward(**reward)  # type: ignore[arg-type]
    assert error.value.field == field


# --- Purchases and refunds ---------------------------------------------------------------


def test_a_purchases_lines_of_a_category() -> None:
    coffee = Item("c", "coffee", Decimal(2), Decimal("2.50"))
    cake = Item("k", "cake", Decimal(1), Decimal("4.00"))
    bought = purchase(items=(coffee, cake))
    assert bought.lines_of("coffee") == (coffee,)
    assert bought.lines_of(None) == (coffee, cake)
    assert bought.lines_of("tea") == ()
    assert bought.key == purchase_key("bar", "p1") == "bar:p1"


def test_purchases_and_refunds_are_keyed_across_partners_as_points_keys_them() -> None:
    assert purchase_key("bar", "p1") == points_purchase_key("bar", "p1")
    assert purchase_key("bar", "p1") != purchase_key("shop", "p1")
    assert refund_key("bar", "r1") == "bar:r1"
    assert refund_key("bar", "r1") != refund_key("shop", "r1")


@pytest.mark.parametrize(
    ("total", "refunded", "share"),
    [
        ("10.00", "0", "0"),
        ("10.00", "-1.00", "0"),
        ("10.00", "2.50", "0.25"),
        ("10.00", "10.00", "1"),
        ("10.00", "12.00", "1"),
        ("0", "0", "0"),
        ("0", "1.00", "1"),
    ],
)
def test_the_refunded_share_is_within_zero_and_one(total: str, refunded: str, share: str) -> None:
    assert refunded_share(Decimal(total), Decimal(refunded)) == Decimal(share)


@given(
    total=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2),
    refunded=st.decimals(min_value=Decimal("-10"), max_value=Decimal("200000"), places=2),
)
def test_the_refunded_share_never_leaves_zero_to_one(total: Decimal, refunded: Decimal) -> None:
    share = refunded_share(total, refunded)
    assert Decimal(0) <= share <= Decimal(1)
    assert (share == 1) == (refunded >= total)


# --- Derived ids -------------------------------------------------------------------------

_ID = re.compile(IDENTIFIER_PATTERN)
texts = st.text(max_size=80)


@given(kind=texts, parts=st.lists(texts, max_size=4))
def test_a_derived_id_is_deterministic_and_within_bounds(kind: str, parts: list[str]) -> None:
    derived = derived_id(kind, *parts)
    assert derived == derived_id(kind, *parts)
    assert len(derived) <= MAX_ID_LENGTH
    assert _ID.match(derived)
    assert re.fullmatch(r"g-[0-9a-f]{32}", derived)


@given(
    one=st.tuples(texts, st.lists(texts, max_size=3)),
    other=st.tuples(texts, st.lists(texts, max_size=3)),
)
def test_distinct_inputs_derive_distinct_ids(
    one: tuple[str, list[str]], other: tuple[str, list[str]]
) -> None:
    if one != other:
        assert derived_id(one[0], *one[1]) != derived_id(other[0], *other[1])


def test_parts_cannot_be_mistaken_for_one_another() -> None:
    assert derived_id("k", "a\x1fb") != derived_id("k", "a", "b")
    assert derived_id("k", "a:b", "c") != derived_id("k", "a", "b:c")
    assert derived_id("k", "ab") != derived_id("ka", "b")
    assert derived_id("k") != derived_id("k", "")
    assert derived_id("stamp-card", "c", "m", "1") != derived_id("challenge", "c", "m", "1")
