"""The tier lines of `fedelta customer show`: each route's progress (issue 25), and a
spend-only program's lines as they were."""

from io import StringIO
from typing import Any

from rich.console import Console

from fedelta_cli.operations import render_customer

SPEND_ONLY: dict[str, Any] = {
    "tier": "silver",
    "since": "2026-03-15T14:00:00Z",
    "qualifying_spend": "550.00",
    "next_tier": "gold",
    "amount_to_next_tier": "1450.00",
    "review_at": "2027-03-15T14:00:00Z",
    "amount_to_keep_tier": "0.00",
    "qualifying_referrals": 0,
    "qualifying_visits": 2,
    "referrals_to_next_tier": None,
    "visits_to_next_tier": None,
    "next_tier_match": "any",
    "referrals_to_keep_tier": None,
    "visits_to_keep_tier": None,
    "tier_match": "any",
}


def shown(tier: dict[str, Any]) -> str:
    console = Console(file=StringIO(), width=200, color_system=None)
    view: dict[str, Any] = {"balance": None, "tier": tier, "ledger": [], "notifications": []}
    render_customer("c1", view, console)
    out = console.file
    assert isinstance(out, StringIO)
    return out.getvalue()


def test_a_spend_only_tier_shows_the_amount_alone() -> None:
    text = shown(SPEND_ONLY)
    assert "qualifying spend 550.00  (1450.00 more to gold)" in text
    assert "0.00 more keeps the tier" in text
    assert "friends" not in text


def test_a_tier_with_routes_shows_each_routes_progress() -> None:
    text = shown(
        SPEND_ONLY
        | {
            "tier": "gold",
            "qualifying_referrals": 3,
            "next_tier": "platinum",
            "amount_to_next_tier": "340.00",
            "referrals_to_next_tier": 2,
            "referrals_to_keep_tier": 0,
            "amount_to_keep_tier": "0.00",
        }
    )
    assert "qualifying spend 550.00, 3 friends, 2 visits" in text
    assert "(2 more friends or 340.00 more to platinum)" in text
    assert "0 more friends or 0.00 more keeps the tier" in text
