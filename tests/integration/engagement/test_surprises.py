"""Surprise rewards on the test stack's Kafka and PostgreSQL: a rule of chance 1 grants on every
purchase until its daily budget is spent, a cooldown holds a member, the same purchase
redelivered wins once, a whole refund takes the win back, a rule of a tiny chance never wins,
and the auditor's recomputation of a draw matches what engagement decided."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from services.engagement.adapters.repositories.consumer import consumer_repository
from services.engagement.handlers import Context, apply_batch
from services.engagement.settings import EngagementSettings
from shared.messaging import events
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from tests.integration.engagement.support import (
    WITHIN,
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
from tests.support.database import engine_for
from tests.support.kafka import publish
from tests.support.polling import eventually
from tests.support.services import ADMIN
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

REWARDED = (events.ENGAGEMENT_REWARDED,)
REVOKED = (events.ENGAGEMENT_REWARD_REVOKED,)


def purchase_ids(found: list[CloudEvent]) -> list[str]:
    return [e.data["purchase_id"] for e in found]


async def rules_on(client: httpx.AsyncClient, category: str) -> dict[str, dict[str, Any]]:
    """Four rules on purchases of `category` (no other test's purchases carry it), 30 points
    each: "budget" (chance 1, 100 points a day: three wins), "always" (chance 1: every
    purchase wins, which tells the test a purchase was read), "cooldown" (chance 1, a member
    wins once in 30 days) and "rare" (chance 0.000001)."""
    base = {"category": category, "reward": {"points": 30}, **window()}
    made: dict[str, dict[str, Any]] = {
        "budget": {"name": "Budget", "chance": "1", "daily_budget": 100},
        "always": {"name": "Always", "chance": "1"},
        "cooldown": {"name": "Once a month", "chance": "1.0", "cooldown_days": 30},
        "rare": {"name": "Rare", "chance": "0.000001"},
    }
    return {
        name: await create(client, "/v1/surprises", {**base, **rule}) for name, rule in made.items()
    }


async def test_budget_cooldown_redelivery_refund_and_tiny_chances_hold(
    stack: Stack, client: httpx.AsyncClient, settings: EngagementSettings
) -> None:
    category = unique_category()
    rules = await rules_on(client, category)
    now = datetime.now(UTC).replace(microsecond=0)
    members = [new_id(f"surprise-{n}") for n in range(4)]
    bought = {
        m: factories.purchase(m, "4.00", at=now, items=[coffee(category, unit_price="4.00")])
        for m in members
    }
    await send_all(
        stack,
        [factories.enrolment(m, at=now - timedelta(days=1)) for m in members]
        + list(bought.values()),
    )
    for m in members:
        await events_reach(stack, m, REWARDED, 1, rules["always"]["id"])

    # Every purchase is read: three of four won the budget rule (90 of 100 points; a fourth
    # would make 120), each won the cooldown rule, none the rare one.
    async def budget_wins_reach_three() -> list[CloudEvent] | None:
        rule_id = rules["budget"]["id"]
        found = [e for m in members for e in await engagement_events(stack, m, REWARDED, rule_id)]
        return found if len(found) >= 3 else None

    budget_wins = await eventually(budget_wins_reach_three, within=WITHIN, what="3 budget wins")
    assert len(budget_wins) == 3
    for m in members:
        await events_reach(stack, m, REWARDED, 1, rules["cooldown"]["id"])
        assert len(await engagement_events(stack, m, REWARDED, rules["cooldown"]["id"])) == 1
        assert await engagement_events(stack, m, REWARDED, rules["rare"]["id"]) == []
    grant = events.EngagementRewarded.model_validate(budget_wins[0].data)
    assert (grant.reason, grant.points, grant.name) == ("surprise", 30, "Budget")

    # The first member's purchase again, as the same event and as another one, then a new
    # purchase of theirs (same partition, read after): the new one wins "always" only (the
    # budget is spent, the cooldown holds), the old one nothing more.
    first = members[0]
    again = factories.purchase(
        first,
        "4.00",
        at=now,
        purchase_id=bought[first].data["purchase_id"],
        items=[coffee(category, unit_price="4.00")],
    )
    later = factories.purchase(first, "4.00", at=now, items=[coffee(category, unit_price="4.00")])
    await publish(stack.kafka, bought[first].topic, first, bought[first])
    await send_all(stack, [again, later])
    always = await events_reach(stack, first, REWARDED, 2, rules["always"]["id"])
    assert purchase_ids(always) == [bought[first].data["purchase_id"], later.data["purchase_id"]]
    for rule in ("cooldown", "rare"):
        found = await engagement_events(stack, first, REWARDED, rules[rule]["id"])
        assert purchase_ids(found) == (
            [bought[first].data["purchase_id"]] if rule == "cooldown" else []
        )
    assert len(await engagement_events(stack, first, REWARDED, rules["budget"]["id"])) <= 1

    # A whole refund of the first purchase takes back each surprise it won.
    won = {
        e.data["grant_id"]
        for e in await engagement_events(stack, first, REWARDED)
        if e.data["purchase_id"] == bought[first].data["purchase_id"]
    }
    refund = factories.refund(first, bought[first].data["purchase_id"], "4.00", at=now)
    await send_all(stack, [refund])
    revoked = await events_reach(stack, first, REVOKED, len(won))
    assert {e.data["grant_id"] for e in revoked} == won
    assert {e.data["refund_id"] for e in revoked} == {refund.data["refund_id"]}

    await _auditor_recomputes(client, settings, rules, bought, budget_wins)


async def _auditor_recomputes(
    client: httpx.AsyncClient,
    settings: EngagementSettings,
    rules: dict[str, dict[str, Any]],
    bought: dict[str, CloudEvent],
    budget_wins: list[CloudEvent],
) -> None:
    """Every draw the API answers is HMAC-SHA256(secret, "<rule>/<partner>:<purchase>"): the
    auditor recomputes it with the secret, and it says which draws were granted."""
    secret = settings.surprise_secret.get_secret_value().encode()
    granted = {e.data["purchase_id"] for e in budget_wins}
    for purchase in bought.values():
        partner, purchase_id = purchase.data["partner_id"], purchase.data["purchase_id"]
        for name in ("budget", "rare"):
            rule_id = rules[name]["id"]
            response = await client.get(
                f"/v1/surprises/{rule_id}/draws/{partner}/{purchase_id}", headers=ADMIN
            )
            assert response.status_code == 200, response.text
            shown = response.json()
            message = f"{rule_id}/{partner}:{purchase_id}"
            digest = hmac.new(secret, message.encode(), hashlib.sha256).digest()
            number = int.from_bytes(digest[:8], "big")
            chance = Decimal(rules[name]["chance"])
            assert (shown["message"], shown["digest"], shown["number"]) == (
                message,
                digest.hex(),
                str(number),
            )
            assert shown["value"].startswith("0.")
            assert shown["wins"] == (Fraction(number, 2**64) < Fraction(chance))
            expected = purchase_id in granted if name == "budget" else False
            assert shown["granted"] == expected
    missing = await client.get("/v1/surprises/no-such-rule/draws/demo/p-1", headers=ADMIN)
    assert missing.status_code == 404


async def test_rules_are_validated_named_listed_and_ended(client: httpx.AsyncClient) -> None:
    starts = datetime.now(UTC).replace(microsecond=0).isoformat()
    body = {"name": "Surprise", "chance": "0.02", "reward": {"points": 10}, "starts_at": starts}
    cases = [
        ({**body, "chance": "0"}, "chance"),
        ({**body, "chance": "1.5"}, "chance"),
        ({**body, "chance": 0.5}, "chance"),
        ({**body, "chance": "0.0000000001"}, "chance"),
        ({**body, "daily_budget": 100, "reward": {"reward_id": "free-coffee"}}, "daily_budget"),
        ({**body, "daily_budget": 5}, "daily_budget"),
        ({**body, "cooldown_days": 0}, "cooldown_days"),
        ({**body, "ends_at": "2000-01-01T00:00:00Z"}, "ends_at"),
    ]
    for invalid, field in cases:
        response = await client.post(
            "/v1/surprises", json=invalid, headers={**ADMIN, "Idempotency-Key": new_id("k")}
        )
        assert response.status_code == 422, (field, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in response.text

    key = {**ADMIN, "Idempotency-Key": new_id("key")}
    sent = {**body, "partner_id": "caffe-nord", "cooldown_days": 7, "daily_budget": 500}
    created = await client.post("/v1/surprises", json=sent, headers=key)
    repeated = await client.post("/v1/surprises", json=sent, headers=key)
    assert created.status_code == 201 and repeated.json()["id"] == created.json()["id"]
    shown = created.json()
    assert (shown["chance"], shown["cooldown_days"], shown["daily_budget"]) == ("0.02", 7, 500)
    surprise_id = shown["id"]
    assert (await client.get(f"/v1/surprises/{surprise_id}", headers=ADMIN)).json() == shown
    listed = (await client.get("/v1/surprises", headers=ADMIN)).json()["items"]
    assert surprise_id in [rule["id"] for rule in listed]

    assert (await client.delete(f"/v1/surprises/{surprise_id}", headers=ADMIN)).status_code == 204
    assert (await client.get(f"/v1/surprises/{surprise_id}", headers=ADMIN)).json()["ends_at"]
    missing = await client.get("/v1/surprises/no-such-rule", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["type"].endswith("unknown-surprise")
    gone = await client.delete("/v1/surprises/no-such-rule", headers=ADMIN)
    assert gone.status_code == 404


async def test_two_consumers_at_once_hold_the_budget_and_the_cooldown(
    stack: Stack, client: httpx.AsyncClient, settings: EngagementSettings
) -> None:
    """Two transactions apply batches at once, as two instances may during a rebalance: the
    second waits for the first's locks and then sees its wins, so it admits neither a second
    win of a member within the cooldown nor a win past the day's budget."""
    category = unique_category()
    rule = await create(
        client,
        "/v1/surprises",
        {
            "name": "Contended",
            "chance": "1",
            "category": category,
            "reward": {"points": 30},
            "daily_budget": 60,
            "cooldown_days": 30,
            **window(),
        },
    )
    now = datetime.now(UTC).replace(microsecond=0)
    both, one, other = (new_id(f"contended-{n}") for n in range(3))

    def bought(member: str) -> CloudEvent:
        return factories.purchase(member, "4.00", at=now, items=[coffee(category)])

    key = settings.surprise_secret.get_secret_value().encode()
    first, second = CollectingSink(), CollectingSink()
    async with (
        engine_for(stack, "engagement", pool_size=3) as engine,
        engine.connect() as a,
        engine.connect() as b,
    ):
        pid = await b.scalar(sa.text("SELECT pg_backend_pid()"))
        await apply_batch(
            [bought(both), bought(one)],
            Context(consumer_repository(a), first, now, surprise_key=key),
        )
        waiting = asyncio.create_task(
            apply_batch(
                [bought(both), bought(other)],
                Context(consumer_repository(b), second, now, surprise_key=key),
            )
        )

        async def blocked() -> bool | None:
            async with engine.connect() as monitor:
                kind = await monitor.scalar(
                    sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": pid},
                )
            return True if kind == "Lock" else None

        await eventually(blocked, within=WITHIN, what="the second batch waiting for a lock")
        await a.commit()
        await waiting
        await b.commit()

    def wins(sink: CollectingSink) -> list[str]:
        return [
            e.subject or ""
            for _, _, e in sink.events
            if e.type == events.ENGAGEMENT_REWARDED and e.data["rule_id"] == rule["id"]
        ]

    assert sorted(wins(first)) == sorted([both, one])
    assert wins(second) == []
