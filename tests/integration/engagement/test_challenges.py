"""Challenges on the test stack's Kafka and PostgreSQL: progress counts activity inside the
window, refunds take it back until the challenge is met, and a challenge met is completed
once, with its reward and its badge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from shared.messaging import events
from tests.integration.engagement.support import (
    WITHIN,
    create,
    engagement_events,
    events_reach,
    new_id,
    window,
)
from tests.integration.tiers.test_tiers import send_all
from tests.support import factories
from tests.support.polling import eventually
from tests.support.services import READER
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


async def challenge_of(
    client: httpx.AsyncClient, customer_id: str, challenge_id: str, progress: str
) -> dict[str, Any]:
    """The member's challenge once it shows `progress`."""

    async def shown() -> dict[str, Any] | None:
        response = await client.get(f"/v1/customers/{customer_id}/challenges", headers=READER)
        if response.status_code != 200:
            return None
        found = next(
            (c for c in response.json()["items"] if c["challenge_id"] == challenge_id), None
        )
        return found if found and Decimal(found["progress"]) == Decimal(progress) else None

    return await eventually(shown, within=WITHIN, what=f"progress {progress} on {challenge_id}")


async def test_a_spend_challenge_met_is_completed_once_with_its_reward_and_badge(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    partner = f"partner-{new_id('p')[-12:]}"
    challenge = await create(
        client,
        "/v1/challenges",
        {
            "name": "Spend 100 in December",
            "goal": {"kind": "spend", "target": "100", "partner_id": partner},
            "reward": {"points": 20},
            "badge": "Big spender",
            **window(),
        },
    )
    member = new_id("spender")
    now = datetime.now(UTC)
    before = now - timedelta(days=3)  # before the window: does not count
    await send_all(
        stack,
        [
            factories.enrolment(member, at=before - timedelta(days=1)),
            factories.purchase(member, "500.00", at=before, partner_id=partner),
            factories.purchase(member, "60.00", at=now, partner_id=partner),
            factories.purchase(member, "70.00", at=now),  # another partner: does not count
        ],
    )
    shown = await challenge_of(client, member, challenge["id"], "60")
    assert shown["completed_at"] is None and Decimal(shown["target"]) == 100

    await send_all(stack, [factories.purchase(member, "50.00", at=now, partner_id=partner)])
    done = await challenge_of(client, member, challenge["id"], "110")
    assert done["completed_at"] is not None and done["badge"] == "Big spender"
    await send_all(stack, [factories.purchase(member, "80.00", at=now, partner_id=partner)])
    await challenge_of(client, member, challenge["id"], "190")

    kinds = (events.ENGAGEMENT_REWARDED, events.CHALLENGE_COMPLETED, events.BADGE_EARNED)
    found = await events_reach(stack, member, kinds, 3, challenge["id"])
    assert sorted(e.type for e in found) == sorted(kinds)
    rewarded = next(e for e in found if e.type == events.ENGAGEMENT_REWARDED)
    assert (rewarded.data["reason"], rewarded.data["points"]) == ("challenge", 20)
    badges = (await client.get(f"/v1/customers/{member}/badges", headers=READER)).json()
    assert [(b["badge"], b["challenge_id"]) for b in badges["items"]] == [
        ("Big spender", challenge["id"])
    ]
    assert len(await engagement_events(stack, member, kinds, challenge["id"])) == 3


async def test_a_refund_takes_progress_back_until_the_challenge_is_met(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    partner = f"partner-{new_id('p')[-12:]}"
    challenge = await create(
        client,
        "/v1/challenges",
        {
            "name": "Three visits",
            "goal": {"kind": "purchases", "target": "3", "partner_id": partner},
            "reward": {"reward_id": "free-coffee"},
            **window(),
        },
    )
    member = new_id("visits")
    now = datetime.now(UTC)
    bought = [factories.purchase(member, "10.00", at=now, partner_id=partner) for _ in range(2)]
    await send_all(stack, [factories.enrolment(member, at=now - timedelta(days=1)), *bought])
    await challenge_of(client, member, challenge["id"], "2")

    refund = factories.refund(
        member, bought[0].data["purchase_id"], "10.00", at=now, partner_id=partner
    )
    await send_all(stack, [refund])
    await challenge_of(client, member, challenge["id"], "1")
    more = [factories.purchase(member, "10.00", at=now, partner_id=partner) for _ in range(2)]
    await send_all(stack, more)
    done = await challenge_of(client, member, challenge["id"], "3")
    assert done["completed_at"] is not None
    assert done["reward"] == {"points": None, "reward_id": "free-coffee"}

    # Met, it stays met: a refund now changes nothing.
    later = factories.refund(
        member, more[0].data["purchase_id"], "10.00", at=now, partner_id=partner
    )
    await send_all(stack, [later, factories.purchase(member, "10.00", at=now, partner_id=partner)])
    kept = await challenge_of(client, member, challenge["id"], "4")
    assert kept["completed_at"] == done["completed_at"]
    completed = await engagement_events(
        stack, member, (events.CHALLENGE_COMPLETED,), challenge["id"]
    )
    assert len(completed) == 1


async def test_a_referral_counts_once_the_friend_buys(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    challenge = await create(
        client,
        "/v1/challenges",
        {
            "name": "Bring a friend",
            "goal": {"kind": "referrals", "target": "1"},
            "reward": {"points": 50},
            **window(),
        },
    )
    referrer, friend = new_id("referrer"), new_id("friend")
    now = datetime.now(UTC)
    # The friend's purchase may be read before their enrolment (two topics): either order.
    await send_all(
        stack,
        [
            factories.enrolment(referrer, at=now - timedelta(days=2)),
            factories.purchase(friend, "12.00", at=now),
            factories.enrolment(friend, at=now - timedelta(days=1), referred_by=referrer),
        ],
    )
    done = await challenge_of(client, referrer, challenge["id"], "1")
    assert done["completed_at"] is not None
    [rewarded] = await events_reach(
        stack, referrer, (events.ENGAGEMENT_REWARDED,), 1, challenge["id"]
    )
    assert (rewarded.data["reason"], rewarded.data["points"]) == ("challenge", 50)


async def test_a_friend_who_never_buys_brings_nothing(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    challenge = await create(
        client,
        "/v1/challenges",
        {
            "name": "Bring a friend who buys",
            "goal": {"kind": "referrals", "target": "1"},
            "reward": {"points": 50},
            **window(),
        },
    )
    referrer, friend = new_id("referrer"), new_id("idle")
    now = datetime.now(UTC)
    await send_all(
        stack,
        [
            factories.enrolment(referrer, at=now - timedelta(days=2)),
            factories.enrolment(friend, at=now - timedelta(days=1), referred_by=referrer),
        ],
    )

    async def friend_known() -> bool:
        response = await client.get(f"/v1/customers/{friend}/badges", headers=READER)
        return response.status_code == 200

    await eventually(friend_known, within=WITHIN, what="the friend's enrolment read")
    shown = await challenge_of(client, referrer, challenge["id"], "0")
    assert shown["completed_at"] is None
