"""Stamp cards on the test stack's Kafka and PostgreSQL: stamps per item, a full card's reward
granted once whatever is redelivered, the surplus carried to a new card, and a refund taking
stamps back or the completed card's reward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from shared.messaging import events
from tests.integration.engagement.support import (
    card_of,
    card_reaches,
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
from tests.support.kafka import publish
from tests.support.services import ADMIN
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

REWARDED = (events.ENGAGEMENT_REWARDED,)
COMPLETED = (events.STAMP_CARD_COMPLETED,)
REVOKED = (events.ENGAGEMENT_REWARD_REVOKED,)


async def test_a_full_card_grants_its_reward_once_and_a_new_card_takes_the_surplus(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    category = unique_category()
    card = await create(
        client,
        "/v1/stamp-cards",
        {
            "name": "Tenth coffee free",
            "stamps_required": 3,
            "per": "item",
            "category": category,
            "reward": {"points": 50},
            **window(),
        },
    )
    member = new_id("stamps")
    now = datetime.now(UTC)
    first = factories.purchase(member, "6.00", at=now, items=[coffee(category, 2)])
    second = factories.purchase(member, "9.00", at=now, items=[coffee(category, 2), coffee("tea")])
    await send_all(stack, [factories.enrolment(member, at=now - timedelta(days=1)), first, second])
    shown = await card_reaches(client, member, card["id"], stamps=1, completed=1)
    assert shown["stamps_required"] == 3

    # The same purchase again, as the same event and as another one, gives nothing more; a
    # purchase after them (same member, so same partition, read after) shows they were read.
    again = factories.purchase(
        member, "9.00", at=now, purchase_id=second.data["purchase_id"], items=[coffee(category, 2)]
    )
    await publish(stack.kafka, second.topic, member, second)
    await send_all(
        stack, [again, factories.purchase(member, "3.00", at=now, items=[coffee(category)])]
    )
    await card_reaches(client, member, card["id"], stamps=2, completed=1)

    [rewarded] = await events_reach(stack, member, REWARDED, 1, card["id"])
    grant = events.EngagementRewarded.model_validate(rewarded.data)
    assert (grant.reason, grant.rule_id, grant.points, grant.reward_id) == (
        "stamp_card",
        card["id"],
        50,
        None,
    )
    assert grant.purchase_id == second.data["purchase_id"]
    [completed] = await engagement_events(stack, member, COMPLETED, card["id"])
    assert completed.data["grant_id"] == grant.grant_id
    assert completed.data["completed_count"] == 1
    assert len(await engagement_events(stack, member, REWARDED, card["id"])) == 1


async def test_a_refund_takes_its_stamps_back_and_then_the_completed_cards_reward(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    category = unique_category()
    card = await create(
        client,
        "/v1/stamp-cards",
        {
            "name": "Two visits, one pastry",
            "stamps_required": 2,
            "category": category,
            "reward": {"reward_id": "pastry"},
            **window(),
        },
    )
    member = new_id("refunds")
    now = datetime.now(UTC)
    bought = [
        factories.purchase(member, "4.00", at=now, items=[coffee(category)]) for _ in range(3)
    ]
    await send_all(stack, [factories.enrolment(member, at=now - timedelta(days=1)), *bought])
    await card_reaches(client, member, card["id"], stamps=1, completed=1)
    [rewarded] = await events_reach(stack, member, REWARDED, 1, card["id"])

    # Half a purchase refunded: of its one stamp it keeps floor(1 * 0.5) = 0, so one stamp
    # goes, from the current card.
    first_id = bought[0].data["purchase_id"]
    await send_all(stack, [factories.refund(member, first_id, "2.00", at=now)])
    await card_reaches(client, member, card["id"], stamps=0, completed=1)
    # A whole refund of another purchase finds no stamp on the card: the completion goes,
    # its reward is revoked, and the card holds the other stamp of that completed card.
    await send_all(stack, [factories.refund(member, bought[1].data["purchase_id"], "4.00", at=now)])
    await card_reaches(client, member, card["id"], stamps=1, completed=0)
    [revoked] = await events_reach(stack, member, REVOKED, 1)
    assert revoked.data["grant_id"] == rewarded.data["grant_id"]

    # Completed again by a new purchase: a new grant, not the revoked one again.
    await send_all(stack, [factories.purchase(member, "4.00", at=now, items=[coffee(category)])])
    await card_reaches(client, member, card["id"], stamps=0, completed=1)
    regranted = await events_reach(stack, member, REWARDED, 2, card["id"])
    assert regranted[1].data["grant_id"] != rewarded.data["grant_id"]
    assert regranted[1].data["reward_id"] == "pastry"


async def test_rules_are_validated_named_and_ended_over_the_admin_api(
    client: httpx.AsyncClient,
) -> None:
    starts = datetime.now(UTC).replace(microsecond=0)
    body = {"name": "Card", "stamps_required": 5, "reward": {"points": 10}}
    cases = [
        ({**body, "stamps_required": 0, "starts_at": starts.isoformat()}, "stamps_required"),
        ({**body, "reward": {}, "starts_at": starts.isoformat()}, "reward"),
        (
            {
                **body,
                "starts_at": starts.isoformat(),
                "ends_at": (starts - timedelta(days=1)).isoformat(),
            },
            "ends_at",
        ),
    ]
    for invalid, field in cases:
        response = await client.post(
            "/v1/stamp-cards", json=invalid, headers={**ADMIN, "Idempotency-Key": new_id("k")}
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in response.text

    key = {**ADMIN, "Idempotency-Key": new_id("key")}
    sent = {**body, "starts_at": starts.isoformat()}
    created = await client.post("/v1/stamp-cards", json=sent, headers=key)
    repeated = await client.post("/v1/stamp-cards", json=sent, headers=key)
    assert created.status_code == 201 and repeated.json()["id"] == created.json()["id"]
    card_id = created.json()["id"]
    assert (await client.get(f"/v1/stamp-cards/{card_id}", headers=ADMIN)).json() == created.json()

    ended = await client.delete(f"/v1/stamp-cards/{card_id}", headers=ADMIN)
    assert ended.status_code == 204
    after = (await client.get(f"/v1/stamp-cards/{card_id}", headers=ADMIN)).json()
    assert after["ends_at"] is not None
    missing = await client.get("/v1/stamp-cards/no-such-card", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["type"].endswith("unknown-stamp-card")


async def test_a_member_unknown_to_engagement_is_a_404(client: httpx.AsyncClient) -> None:
    for path in ("stamp-cards", "challenges", "badges"):
        response = await client.get(f"/v1/customers/{new_id('nobody')}/{path}", headers=ADMIN)
        assert response.status_code == 404, response.text


async def test_a_members_cards_show_those_in_force_with_no_stamps_yet(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    card = await create(
        client,
        "/v1/stamp-cards",
        {
            "name": "Open card",
            "stamps_required": 4,
            "category": unique_category(),  # no other test's purchase gets a stamp
            "reward": {"points": 5},
            **window(),
        },
    )
    member = new_id("fresh")
    await send_all(stack, [factories.enrolment(member, at=datetime.now(UTC))])
    shown = await card_of(client, member, card["id"])
    assert (shown["stamps"], shown["completed_count"], shown["name"]) == (0, 0, "Open card")


async def test_an_ended_card_counts_no_purchase_read_after_it_ended(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    category = unique_category()
    body = {"stamps_required": 5, "category": category, "reward": {"points": 5}, **window()}
    ended = await create(client, "/v1/stamp-cards", {"name": "Ended", **body})
    kept = await create(client, "/v1/stamp-cards", {"name": "Kept", **body})
    assert (await client.delete(f"/v1/stamp-cards/{ended['id']}", headers=ADMIN)).status_code == 204

    member = new_id("ended")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)  # inside the ended card's window
    await send_all(
        stack,
        [
            factories.enrolment(member, at=an_hour_ago - timedelta(days=1)),
            factories.purchase(member, "3.00", at=an_hour_ago, items=[coffee(category)]),
        ],
    )
    await card_reaches(client, member, kept["id"], stamps=1, completed=0)
    response = await client.get(f"/v1/customers/{member}/stamp-cards", headers=ADMIN)
    assert ended["id"] not in [card["card_id"] for card in response.json()["items"]]
