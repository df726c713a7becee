"""End to end over HTTP: a member's habit and game, from the POS through ingest, engagement,
points and notifications. A program manager makes a stamp card and a challenge over
engagement's API; the member's coffees fill the card and meet the challenge; points credits
both rewards once, the wallet's reads show the card, the challenge and the badge, and the
member is told by email; a refund takes the card's reward back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fedelta_client import StackClient
from tests.e2e.conftest import Pipeline
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e

WITHIN = 90  # seconds: two cores shared with the whole stack


async def created(pos: StackClient, kind: str, body: dict[str, Any]) -> str:
    response = await pos.admin_post(
        f"{pos.env.engagement_url}/v1/{kind}", body, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert response.status_code == 201, response.text
    rule_id: str = response.json()["id"]
    return rule_id


async def engagement_entries(pos: StackClient, customer: str) -> dict[str, int] | None:
    """The member's ledger entries that engagement's rewards made, by reason."""
    response = await pos.ledger(customer)
    if response.status_code != 200:
        return None
    return {
        e["reason"]: e["points"]
        for e in response.json()["entries"]
        if e["reason"].startswith(("stamp card", "challenge"))
    }


async def templates_sent(pos: StackClient, customer: str) -> set[str]:
    response = await pos.notifications(customer)
    if response.status_code != 200:
        return set()
    return {i["template"] for i in response.json()["items"] if i["status"] == "sent"}


async def test_a_members_coffees_fill_a_card_and_meet_a_challenge(
    pipeline: Pipeline, pos: StackClient
) -> None:
    run = uuid.uuid4().hex[:10]
    customer, category = f"e2e-engaged-{run}", f"coffee-{run}"  # no other test's coffee
    now = datetime.now(UTC).replace(microsecond=0)
    window = {"starts_at": (now - timedelta(hours=1)).isoformat()}
    card = await created(
        pos,
        "stamp-cards",
        {
            "name": "Fourth coffee free",
            "stamps_required": 3,
            "per": "item",
            "category": category,
            "reward": {"points": 40},
            **window,
        },
    )
    challenge = await created(
        pos,
        "challenges",
        {
            "name": "Two coffee mornings",
            "goal": {"kind": "purchases", "target": "2", "category": category},
            "reward": {"points": 25},
            "badge": "Coffee lover",
            **window,
            "ends_at": (now + timedelta(days=7)).isoformat(),
        },
    )

    await pos.enrol(customer, f"{customer}@example.com")
    coffees = [{"sku": "espresso", "category": category, "quantity": "2", "unit_price": "1.50"}]
    first = f"p-{run}-1"
    await pos.purchase(customer, "3.00", purchase_id=first, items=coffees)
    await pos.purchase(customer, "3.00", items=coffees)

    rewards = await eventually(
        lambda: _when(engagement_entries(pos, customer), lambda e: len(e) == 2),
        within=WITHIN,
        what="the card's and the challenge's rewards in the ledger",
    )
    assert sorted(rewards.values()) == [25, 40]

    cards = (await pos.stamp_cards(customer)).json()["items"]
    [mine] = [c for c in cards if c["card_id"] == card]
    assert (mine["stamps"], mine["completed_count"]) == (1, 1)
    [taken] = [
        c
        for c in (await pos.challenges(customer)).json()["items"]
        if c["challenge_id"] == challenge
    ]
    assert taken["completed_at"] is not None
    badges = (await pos.badges(customer)).json()["items"]
    assert [b["badge"] for b in badges] == ["Coffee lover"]

    sent = await eventually(
        lambda: _when(
            templates_sent(pos, customer),
            lambda t: {"stamp_card_completed", "challenge_completed"} <= t,
        ),
        within=WITHIN,
        what="the member told of the card and the challenge",
    )
    assert "badge_earned" not in sent  # the challenge's message names its badge

    # The first purchase refunded whole: its 2 stamps come off the card (1 there), so the
    # completed card goes back and its 40 points are taken back.
    await pos.refund(first, "3.00")
    await eventually(
        lambda: _when(pos.stamp_cards(customer), lambda r: _card(r, card) == (2, 0)),
        within=WITHIN,
        what="the card back to 2 stamps, none completed",
    )


async def _when(call: Any, predicate: Any) -> Any:
    result = await call
    return result if result and predicate(result) else None


def _card(response: Any, card_id: str) -> tuple[int, int] | None:
    if response.status_code != 200:
        return None
    for card in response.json()["items"]:
        if card["card_id"] == card_id:
            return card["stamps"], card["completed_count"]
    return None
