"""Changing rules in force (PATCH) on the test stack's Kafka and PostgreSQL: what a stamp card,
a challenge or a surprise gives the next purchase follows the change; a field that would
rewrite members' progress is a 422 naming it, an ended rule a 409 and an unknown one a 404.
Every rule is scoped to a category or partner of its own: it touches no other test's members."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.messaging import events
from tests.integration.engagement.support import (
    coffee,
    create,
    engagement_events,
    events_reach,
    new_id,
    unique_category,
    window,
)
from tests.integration.tiers.test_tiers import send_all
from tests.support import factories
from tests.support.services import ADMIN
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

REWARDED = (events.ENGAGEMENT_REWARDED,)


async def patch(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    return await client.patch(path, json=body, headers=ADMIN)


async def changed(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """The rule as the PATCH answers it, which GET shows too."""
    response = await patch(client, path, body)
    assert response.status_code == 200, response.text
    answered: dict[str, Any] = response.json()
    assert (await client.get(path, headers=ADMIN)).json() == answered
    return answered


async def assert_refused(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], status: int, *named: str
) -> None:
    """The PATCH is a problem of `status` whose detail names each of `named`; the rule is as
    it was."""
    before = (await client.get(path, headers=ADMIN)).json()
    response = await patch(client, path, body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    for name in named:
        assert name in response.json()["detail"], response.text
    assert (await client.get(path, headers=ADMIN)).json() == before


async def assert_ended_and_unknown_are_refused(
    client: httpx.AsyncClient, collection: str, rule_id: str, body: dict[str, Any]
) -> None:
    """Once ended (DELETE), the rule cannot be changed (409); a rule that does not exist is a
    404."""
    path = f"{collection}/{rule_id}"
    assert (await client.delete(path, headers=ADMIN)).status_code == 204
    await assert_refused(client, path, body, 409, rule_id)
    missing = await patch(client, f"{collection}/{new_id('none')}", body)
    assert missing.status_code == 404, missing.text
    assert missing.json()["type"].startswith("urn:fedelta:problem:unknown-")


async def test_a_stamp_cards_raised_reward_is_what_its_next_completion_grants(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    category = unique_category()
    card = await create(
        client,
        "/v1/stamp-cards",
        {
            "name": "Two coffees",
            "stamps_required": 2,
            "category": category,
            "reward": {"points": 10},
            **window(),
        },
    )
    path = f"/v1/stamp-cards/{card['id']}"
    member = new_id("upd-card")
    now = datetime.now(UTC)
    two = [factories.purchase(member, "3.00", at=now, items=[coffee(category)]) for _ in range(2)]
    await send_all(stack, [factories.enrolment(member, at=now - timedelta(days=1)), *two])
    [first] = await events_reach(stack, member, REWARDED, 1, card["id"])
    assert (first.data["points"], first.data["name"]) == (10, "Two coffees")

    shown = await changed(
        client, path, {"name": "Two coffees, more points", "reward": {"points": 25}}
    )
    assert shown == {
        **card,
        "name": "Two coffees, more points",
        "reward": {**card["reward"], "points": 25},
    }
    more = [factories.purchase(member, "3.00", at=now, items=[coffee(category)]) for _ in range(2)]
    await send_all(stack, more)
    rewarded = await events_reach(stack, member, REWARDED, 2, card["id"])
    assert [(e.data["points"], e.data["name"]) for e in rewarded] == [
        (10, "Two coffees"),
        (25, "Two coffees, more points"),
    ]

    # Optional fields clear with null; the end must stay after the start.
    cleared = await changed(client, path, {"ends_at": None, "min_amount": "1.50"})
    assert cleared["ends_at"] is None and cleared["min_amount"] == "1.50"
    for frozen in ("stamps_required", "per", "category", "starts_at"):
        value = {"stamps_required": 3, "per": "item", "category": "tea"}.get(
            frozen, now.isoformat()
        )
        await assert_refused(client, path, {frozen: value}, 422, frozen, "create a new one")
    await assert_refused(
        client, path, {"ends_at": (now - timedelta(days=2)).isoformat()}, 422, "ends_at"
    )
    await assert_refused(client, path, {"reward": {}}, 422, "reward")
    await assert_refused(client, path, {"colour": "red"}, 422, "colour")
    await assert_ended_and_unknown_are_refused(client, "/v1/stamp-cards", card["id"], {"name": "x"})
    assert len(await engagement_events(stack, member, REWARDED, card["id"])) == 2


async def test_a_challenge_changed_before_it_is_met_grants_its_new_reward_and_badge(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    partner = f"partner-{new_id('p')[-12:]}"
    challenge = await create(
        client,
        "/v1/challenges",
        {
            "name": "One visit",
            "goal": {"kind": "purchases", "target": "1", "partner_id": partner},
            "reward": {"points": 10},
            **window(),
        },
    )
    path = f"/v1/challenges/{challenge['id']}"
    shown = await changed(
        client, path, {"name": "One visit, big reward", "reward": {"points": 40}, "badge": "Fan"}
    )
    assert shown["goal"] == challenge["goal"] and shown["starts_at"] == challenge["starts_at"]
    assert (shown["reward"]["points"], shown["badge"]) == (40, "Fan")

    member = new_id("upd-chal")
    now = datetime.now(UTC)
    await send_all(
        stack,
        [
            factories.enrolment(member, at=now - timedelta(days=1)),
            factories.purchase(member, "5.00", at=now, partner_id=partner),
        ],
    )
    [rewarded] = await events_reach(stack, member, REWARDED, 1, challenge["id"])
    assert (rewarded.data["points"], rewarded.data["name"]) == (40, "One visit, big reward")
    [badge] = await events_reach(stack, member, (events.BADGE_EARNED,), 1, challenge["id"])
    assert badge.data["badge"] == "Fan"

    await assert_refused(client, path, {"goal": {"kind": "spend", "target": "1"}}, 422, "goal")
    await assert_refused(client, path, {"starts_at": now.isoformat()}, 422, "starts_at")
    await assert_refused(client, path, {"ends_at": None}, 422, "ends_at")
    await assert_refused(
        client, path, {"ends_at": (now - timedelta(days=3)).isoformat()}, 422, "ends_at"
    )
    await assert_ended_and_unknown_are_refused(
        client, "/v1/challenges", challenge["id"], {"badge": None}
    )


async def test_a_surprise_made_certain_wins_the_next_purchase_with_its_new_reward(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    category = unique_category()
    surprise = await create(
        client,
        "/v1/surprises",
        {
            "name": "Rare",
            "chance": "0.000001",
            "category": category,
            "reward": {"points": 30},
            **window(),
        },
    )
    path = f"/v1/surprises/{surprise['id']}"
    shown = await changed(client, path, {"name": "Always", "chance": "1", "reward": {"points": 45}})
    assert (shown["chance"], shown["reward"]["points"], shown["category"]) == ("1", 45, category)

    member = new_id("upd-surp")
    now = datetime.now(UTC)
    bought = factories.purchase(member, "4.00", at=now, items=[coffee(category, unit_price="4.00")])
    await send_all(stack, [factories.enrolment(member, at=now - timedelta(days=1)), bought])
    [rewarded] = await events_reach(stack, member, REWARDED, 1, surprise["id"])
    grant = events.EngagementRewarded.model_validate(rewarded.data)
    assert (grant.reason, grant.points, grant.name) == ("surprise", 45, "Always")
    assert grant.purchase_id == bought.data["purchase_id"]

    # A budget below the reward: the domain's rule, named.
    await assert_refused(client, path, {"daily_budget": 40}, 422, "daily_budget")
    await assert_refused(client, path, {"chance": 0.5}, 422, "chance")
    for frozen in ("category", "partner_id", "store_id"):
        await assert_refused(client, path, {frozen: "elsewhere"}, 422, frozen, "create a new one")
    budgeted = await changed(client, path, {"daily_budget": 90, "cooldown_days": 7})
    assert (budgeted["daily_budget"], budgeted["cooldown_days"]) == (90, 7)
    await assert_ended_and_unknown_are_refused(
        client, "/v1/surprises", surprise["id"], {"chance": "0.5"}
    )
