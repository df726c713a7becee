"""The rules' numbers from YAML: every default, a file naming only what it changes, and a bad
field named."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from services.insights.adapters.program_file import ProgramError, load_rules, parse_rules
from services.insights.domain.model import Feedback, Rules


def test_the_shipped_file_is_the_defaults() -> None:
    assert load_rules() == Rules()


def test_a_file_names_only_what_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "insights.yaml"
    path.write_text("window_days: 180\nlifecycle: {at_risk_days: 21, lapsed_days: 45}\n")
    rules = load_rules(path)
    assert (rules.window_days, rules.lifecycle.lapsed_days, rules.lifecycle.new_days) == (
        180,
        45,
        30,
    )
    assert rules.loyalty.price.min_campaign_share == Decimal("0.6")


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"window_days": 0}, "window_days"),
        ({"lifecycle": {"at_risk_days": 90, "lapsed_days": 60}}, "lifecycle"),
        ({"loyalty_types": {"happy": {"max_redeemed_share": "1.5"}}}, "max_redeemed_share"),
        ({"loyalty_types": {"grumpy": {}}}, "grumpy"),
        ({"entry_tier": "diamond"}, "entry_tier"),
        ([1, 2], "mapping"),
    ],
)
def test_a_bad_field_is_named(document: object, named: str) -> None:
    with pytest.raises(ProgramError, match=named):
        parse_rules(document)


def test_complaints_and_promoters_by_kind() -> None:
    limits, at = Rules().feedback, datetime(2026, 1, 1, tzinfo=UTC)
    assert limits.complaint(Feedback(at, "nps", 6)) and not limits.complaint(Feedback(at, "nps", 7))
    assert limits.promoter(Feedback(at, "review", 5)) and not limits.promoter(
        Feedback(at, "review", 4)
    )
    assert not limits.complaint(Feedback(at, "survey", 0))  # a survey's score judges nothing
    assert not limits.promoter(Feedback(at, "nps", None))
