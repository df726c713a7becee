"""The reward catalogue's rules: what makes a reward unusable, and why a member may not
redeem one now (tier, stock, limit, window, points, in that order)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.points.domain.rewards import (
    TIERS,
    WHY_NOT_ORDER,
    Reward,
    RewardKind,
    coupon_expiry,
    is_listed,
    is_open,
    reward_flaw,
    tier_rank,
    why_not,
)

NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)


def reward(**fields: object) -> Reward:
    base = Reward(
        reward_id="r1",
        name="Free coffee",
        kind=RewardKind.COUPON,
        points_cost=100,
        created_at=NOW - timedelta(days=10),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def test_an_open_reward_the_member_can_afford_is_redeemable() -> None:
    assert why_not(reward(), tier="bronze", used=0, available=100, now=NOW) == []


@pytest.mark.parametrize(
    ("fields", "tier", "used", "available", "reasons"),
    [
        ({"min_tier": "gold"}, "silver", 0, 500, ["tier"]),
        ({"min_tier": "gold"}, "platinum", 0, 500, []),
        ({"min_tier": "silver"}, "unknown-tier", 0, 500, ["tier"]),
        ({"stock": 3, "redeemed": 3}, "bronze", 0, 500, ["stock"]),
        ({"stock": 3, "redeemed": 2}, "bronze", 0, 500, []),
        ({"stock": 0}, "bronze", 0, 500, ["stock"]),
        ({"per_customer_limit": 2}, "bronze", 2, 500, ["limit"]),
        ({"per_customer_limit": 2}, "bronze", 1, 500, []),
        ({"starts_at": NOW + timedelta(seconds=1)}, "bronze", 0, 500, ["window"]),
        ({"starts_at": NOW}, "bronze", 0, 500, []),
        ({"ends_at": NOW}, "bronze", 0, 500, ["window"]),
        ({"retired_at": NOW - timedelta(days=1)}, "bronze", 0, 500, ["window"]),
        ({}, "bronze", 0, 99, ["points"]),
        (
            {"min_tier": "platinum", "stock": 1, "redeemed": 1, "per_customer_limit": 1,
             "ends_at": NOW - timedelta(days=1), "starts_at": NOW - timedelta(days=5)},
            "gold", 1, 0, ["tier", "stock", "limit", "window", "points"],
        ),
    ],
)  # fmt: skip
def test_why_not_names_each_reason_in_its_fixed_order(
    fields: dict[str, object], tier: str, used: int, available: int, reasons: list[str]
) -> None:
    assert why_not(reward(**fields), tier=tier, used=used, available=available, now=NOW) == (
        reasons
    )


def test_without_the_available_points_the_points_are_not_judged() -> None:
    assert why_not(reward(), tier="bronze", used=0, available=None, now=NOW) == []


@given(
    min_tier=st.none() | st.sampled_from(TIERS),
    tier=st.sampled_from(TIERS),
    stock=st.none() | st.integers(0, 5),
    redeemed=st.integers(0, 5),
    limit=st.none() | st.integers(1, 3),
    used=st.integers(0, 4),
    available=st.integers(0, 300),
    starts=st.none() | st.integers(-3, 3),
    length=st.none() | st.integers(1, 5),
)
def test_why_not_is_ordered_and_empty_exactly_when_every_rule_allows(
    min_tier: str | None,
    tier: str,
    stock: int | None,
    redeemed: int,
    limit: int | None,
    used: int,
    available: int,
    starts: int | None,
    length: int | None,
) -> None:
    starts_at = None if starts is None else NOW + timedelta(days=starts)
    ends_at = None if length is None else (starts_at or NOW) + timedelta(days=length)
    r = reward(
        min_tier=min_tier,
        stock=stock,
        redeemed=redeemed,
        per_customer_limit=limit,
        starts_at=starts_at,
        ends_at=ends_at,
    )
    reasons = why_not(r, tier=tier, used=used, available=available, now=NOW)
    assert reasons == [reason for reason in WHY_NOT_ORDER if reason in reasons]
    allowed = (
        (min_tier is None or TIERS.index(tier) >= TIERS.index(min_tier))
        and (stock is None or redeemed < stock)
        and (limit is None or used < limit)
        and is_open(r, NOW)
        and available >= r.points_cost
    )
    assert (reasons == []) == allowed
    assert ("points" in reasons) == (available < r.points_cost)


def test_a_reward_is_listed_until_it_ends_or_retires_and_open_once_started() -> None:
    upcoming = reward(starts_at=NOW + timedelta(days=1))
    assert is_listed(upcoming, NOW) and not is_open(upcoming, NOW)
    ended = reward(ends_at=NOW - timedelta(seconds=1))
    assert not is_listed(ended, NOW) and not is_open(ended, NOW)
    retired = reward(retired_at=NOW)
    assert not is_listed(retired, NOW) and not is_open(retired, NOW)
    assert is_open(retired, NOW - timedelta(seconds=1))


@pytest.mark.parametrize(
    ("fields", "flaw"),
    [
        ({"points_cost": 0}, "points_cost"),
        ({"starts_at": NOW, "ends_at": NOW}, "ends_at"),
        ({"kind": RewardKind.DISCOUNT}, "value"),
        ({"min_tier": "diamond"}, "min_tier"),
        ({"stock": 2, "redeemed": 3}, "stock"),
    ],
)
def test_a_flawed_reward_is_refused_naming_the_field(fields: dict[str, object], flaw: str) -> None:
    found = reward_flaw(reward(**fields))
    assert found is not None and found.startswith(flaw)


def test_a_sound_reward_has_no_flaw() -> None:
    assert reward_flaw(reward()) is None
    assert reward_flaw(reward(kind=RewardKind.DISCOUNT, value=Decimal("5.00"))) is None
    assert reward_flaw(reward(starts_at=NOW, ends_at=NOW + timedelta(days=1))) is None


def test_tiers_rank_bronze_lowest_and_unknown_ones_with_it() -> None:
    assert [tier_rank(t) for t in TIERS] == [0, 1, 2, 3]
    assert tier_rank("wood") == 0


def test_a_coupon_lasts_the_rewards_validity() -> None:
    assert coupon_expiry(reward(coupon_validity_days=7), NOW) == NOW + timedelta(days=7)
