"""The engagement lines of `fedelta customer show`: each stamp card, challenge and badge."""

from io import StringIO
from typing import Any

from rich.console import Console

from fedelta_cli.operations import render_customer

VIEW: dict[str, Any] = {
    "balance": None,
    "tier": None,
    "ledger": [],
    "notifications": [],
    "stamp_cards": [
        {"name": "Tenth coffee free", "stamps": 2, "stamps_required": 9, "completed_count": 1}
    ],
    "challenges": [
        {
            "name": "Four weeks",
            "progress": "3.00",
            "target": "4.00",
            "goal": {"kind": "streak_weeks"},
            "completed_at": None,
        },
        {
            "name": "Spend 100",
            "progress": "110.00",
            "target": "100.00",
            "goal": {"kind": "spend"},
            "completed_at": "2026-12-11T10:00:00Z",
        },
    ],
    "badges": [{"badge": "Regular", "challenge_id": "c", "earned_at": "2026-12-23T09:00:00Z"}],
}


def shown(view: dict[str, Any]) -> str:
    console = Console(file=StringIO(), width=200, color_system=None)
    render_customer("anna", view, console)
    out = console.file
    assert isinstance(out, StringIO)
    return out.getvalue()


def test_cards_challenges_and_badges_are_shown_one_a_line() -> None:
    lines = shown(VIEW).splitlines()
    assert any("stamp card" in s and "Tenth coffee free" in s and "2/9 stamps" in s for s in lines)
    assert any("1 completed" in s for s in lines)
    assert any("Four weeks" in s and "3.00/4.00 streak_weeks" in s for s in lines)
    assert any("Spend 100" in s and "2026-12-11" in s for s in lines)
    assert any("badge" in s and "Regular" in s and "2026-12-23" in s for s in lines)


def test_a_view_from_before_engagement_shows_an_empty_panel() -> None:
    old = {k: v for k, v in VIEW.items() if k not in ("stamp_cards", "challenges", "badges")}
    text = shown(old)
    assert "engagement" in text and "Tenth coffee" not in text
