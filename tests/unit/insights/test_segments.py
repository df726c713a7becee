"""Segments: the built-in names, custom criteria with their reasons, the changes between two
memberships, and the API's bounds on a custom segment."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.insights.api.schemas import SegmentIn
from services.insights.domain.model import Features, LoyaltyType, Rfm
from services.insights.domain.segments import (
    Change,
    Criteria,
    CustomSegment,
    built_in_segments,
    changes,
    matches,
    memberships,
)
from shared.messaging.events import SEGMENT_NAME_PATTERN

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def member(**fields: object) -> Features:
    values: dict[str, object] = {
        "customer_id": "c1",
        "as_of": NOW,
        "rfm": Rfm(10, 6, Decimal("300.00"), 4, 5, 3),
        "lifecycle": "active",
        "lifecycle_reason": "10 days since the last purchase",
        "loyalty_types": (LoyaltyType("happy", ("no complaint",)),),
        "tier": "gold",
    } | fields
    return Features(**values)  # type: ignore[arg-type]


def test_every_built_in_segment_is_a_name_the_events_accept() -> None:
    names = built_in_segments()
    assert len(names) == 6 + 5 + 4
    assert all(re.match(SEGMENT_NAME_PATTERN, name) for name in names)


def test_a_member_is_in_their_type_stage_and_tier_with_the_reasons() -> None:
    found = memberships(member(), [])
    assert found == {
        "loyalty:happy": ("no complaint",),
        "lifecycle:active": ("10 days since the last purchase",),
        "tier:gold": ("tier gold",),
    }


def test_every_condition_of_a_custom_segment_must_hold() -> None:
    criteria = Criteria(tiers=("gold", "platinum"), lifecycle=("active",), min_f=4)
    assert matches(criteria, member()) == ("lifecycle active", "tier gold", "f score 5")
    assert matches(criteria, member(tier="silver")) is None
    assert matches(Criteria(max_recency_days=5), member()) is None
    assert matches(Criteria(min_monetary=Decimal("300")), member()) == ("300.00 spent",)
    assert matches(Criteria(min_r=1), member(rfm=Rfm(None, 0, Decimal(0)))) is None


def test_a_custom_segment_joins_the_built_in_ones() -> None:
    big = CustomSegment("big", "", Criteria(min_frequency=5))
    small = CustomSegment("small", "", Criteria(max_f=2))
    assert set(memberships(member(), [big, small])) >= {"big"}
    assert "small" not in memberships(member(), [big, small])


def test_changes_are_the_entries_then_the_exits() -> None:
    now_in = {"tier:gold": ("tier gold",), "lifecycle:active": ("x",)}
    assert changes("c1", now_in, {"tier:silver", "lifecycle:active"}) == [
        Change("c1", "tier:gold", True, ("tier gold",)),
        Change("c1", "tier:silver", False),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "loyalty:happy", "criteria": {"min_r": 2}},
        {"name": "Big", "criteria": {"min_r": 2}},
        {"name": "big", "criteria": {}},
        {"name": "big", "criteria": {"min_r": 6}},
        {"name": "big", "criteria": {"min_m": 4, "max_m": 3}},
        {"name": "big", "criteria": {"lifecycle": ["sleeping"]}},
        {"name": "big", "criteria": {"min_monetary": 5.5}},
    ],
)
def test_a_custom_segment_out_of_bounds_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SegmentIn.model_validate(body)
