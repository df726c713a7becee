"""End to end over HTTP: one customer's whole points story, from the POS through ingest, tiers
and points, with the expiry replayed a year ahead through the jobs' `as_of`.

The numbers, for customer A (referred by R), with the shipped program:
    welcome                                   +100
    purchase 1, 550.00 at the campaign's store, no tier yet, campaign x2     +1,100
    (tiers: 550.00 of qualifying spend makes A silver)
    purchase 2, 100.00 at silver (1.25)       +125
    refund of 110.00 of purchase 1: floor(1,100 * 110 / 550)                 -220
    redemption                                -300
    hold of 50, voided                        -50 +50
                                              = 805 available
R gets the 200 points of the referral on A's first purchase (and its own welcome 100).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from fedelta_client import StackClient
from shared.messaging import events, topics
from tests.e2e.conftest import Pipeline
from tests.support.kafka import events_for
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e

WITHIN = 90  # seconds: two cores shared with the whole stack and other test stacks


async def json_when(call: Any, predicate: Any) -> Any:
    response = await call
    if response.status_code != 200:
        return None
    body = response.json()
    return body if predicate(body) else None


async def balance_when(pos: StackClient, customer: str, available: int, what: str) -> Any:
    return await eventually(
        lambda: json_when(pos.balance(customer), lambda b: b["available"] == available),
        within=WITHIN,
        what=what,
    )


async def ledger_of(pos: StackClient, customer: str) -> list[dict[str, Any]]:
    response = await pos.ledger(customer)
    assert response.status_code == 200
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


async def tier_changes_points_consumed(pos: StackClient) -> int:
    """How many tier events the points consumer has finished with (its /metrics)."""
    response = await pos.http.get(f"{pos.env.points_url}/metrics")
    assert response.status_code == 200
    consumed = 0.0
    for line in response.text.splitlines():
        if line.startswith("fedelta_events_consumed_total{") and f'topic="{topics.TIERS}"' in line:
            consumed += float(line.rsplit(" ", 1)[1])
    return int(consumed)


async def admin(
    pos: StackClient, path: str, body: dict[str, Any] | None = None, **params: str
) -> httpx.Response:
    return await pos.admin_post(
        f"{pos.env.points_url}{path}",
        body,
        params=params or None,
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )


async def test_a_customers_points_story_from_enrolment_to_expiry(
    pipeline: Pipeline, pos: StackClient
) -> None:
    run = uuid.uuid4().hex[:10]
    referrer, customer, store = f"e2e-r-{run}", f"e2e-a-{run}", f"e2e-store-{run}"
    now = datetime.now(UTC)

    # A campaign at one store (its own, so no other test's purchase is boosted): double points.
    created = await admin(
        pos,
        "/v1/campaigns",
        {
            "name": f"double points at {store}",
            "multiplier": "2",
            "store_id": store,
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(hours=2)).isoformat(),
        },
    )
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]

    # Enrolment: R, then A referred by R. Each gets the welcome bonus.
    await pos.enrol(referrer, None, consent=False)
    enrolled = await pos.post(
        "/v1/customers",
        {
            "customer_id": customer,
            "locale": "en",
            "time_zone": "Europe/Rome",
            "consent": {"email": False, "sms": False},
            "referred_by": referrer,
        },
    )
    assert enrolled.status_code == 202, enrolled.text
    await balance_when(pos, customer, 100, "A's welcome bonus")
    tier_events_before = await tier_changes_points_consumed(pos)

    # Purchase 1, at the campaign's store, before any tier: 550 * 2.
    first_purchase = f"p-{run}-1"
    bought = await pos.post(
        "/v1/purchases",
        {
            "purchase_id": first_purchase,
            "customer_id": customer,
            "store_id": store,
            "occurred_at": datetime.now(UTC).isoformat(),
            "currency": "EUR",
            "total": "550.00",
        },
    )
    assert bought.status_code == 202, bought.text
    await balance_when(pos, customer, 1_200, "100 + 1,100 points for A")
    [earned] = [e for e in await ledger_of(pos, customer) if e["purchase_id"] == first_purchase]
    assert (earned["kind"], earned["points"]) == ("earn", 1_100)
    assert earned["rule_ids"] == ["base", f"campaign:{campaign_id}"]
    # The referral: R's bonus on A's first purchase, once.
    referrer_balance = await balance_when(pos, referrer, 300, "R's welcome and referral bonus")
    assert referrer_balance["lifetime_earned"] == 300

    # Tier up: 550.00 of qualifying spend makes A silver; points hears it from tiers.
    await eventually(
        lambda: json_when(pos.tier(customer), lambda t: t["tier"] == "silver"),
        within=WITHIN,
        what="A silver at tiers",
    )

    async def points_heard_of_the_tier() -> bool:
        return await tier_changes_points_consumed(pos) > tier_events_before

    await eventually(points_heard_of_the_tier, within=WITHIN, what="points consumed the tier")

    # Purchase 2, elsewhere, at silver: 100.00 * 1.25.
    second_purchase = f"p-{run}-2"
    await pos.purchase(customer, "100.00", second_purchase)
    await balance_when(pos, customer, 1_325, "+125 points at silver")
    [silver] = [e for e in await ledger_of(pos, customer) if e["purchase_id"] == second_purchase]
    assert (silver["points"], silver["rule_ids"]) == (125, ["base", "tier:silver"])

    # A partial refund of purchase 1: 110.00 of 550.00 takes back a fifth of its points.
    refunded = await pos.post(
        f"/v1/purchases/{first_purchase}/refunds",
        {
            "refund_id": f"r-{run}",
            "amount": "110.00",
            "occurred_at": datetime.now(UTC).isoformat(),
        },
    )
    assert refunded.status_code == 202, refunded.text
    after_refund = await balance_when(pos, customer, 1_105, "220 points reversed")
    assert after_refund["debt"] == 0
    reversals = [e for e in await ledger_of(pos, customer) if e["kind"] == "reverse"]
    assert [(e["points"], e["purchase_id"]) for e in reversals] == [(-220, first_purchase)]

    # A redemption at the till.
    redeemed = await admin(
        pos, f"/v1/customers/{customer}/redemptions", {"points": 300, "reward": "espresso machine"}
    )
    assert redeemed.status_code == 201, redeemed.text
    assert (redeemed.json()["points"], redeemed.json()["available_after"]) == (300, 805)
    too_much = await admin(
        pos, f"/v1/customers/{customer}/redemptions", {"points": 806, "reward": "a car"}
    )
    assert too_much.status_code == 409

    # A hold, voided: its points come back.
    held = await admin(pos, f"/v1/customers/{customer}/holds", {"points": 50, "reward": "pastry"})
    assert held.status_code == 201, held.text
    hold_id = held.json()["hold_id"]
    assert (await pos.balance(customer)).json()["available"] == 755
    voided = await admin(pos, f"/v1/holds/{hold_id}/void")
    assert voided.status_code == 200, voided.text
    assert (await pos.balance(customer)).json()["available"] == 805

    # A year on, replayed with `as_of`: first the warning, then the expiry of every lot.
    warn_at = now + timedelta(days=350)
    warned = await admin(pos, "/v1/admin/jobs/warn-expiring", as_of=warn_at.isoformat())
    assert warned.status_code == 200, warned.text
    later = (warn_at + timedelta(days=5)).isoformat()
    assert (await admin(pos, "/v1/admin/jobs/warn-expiring", as_of=later)).status_code == 200
    expire_at = now + timedelta(days=400)
    expired = await admin(pos, "/v1/admin/jobs/expire-points", as_of=expire_at.isoformat())
    assert expired.status_code == 200, expired.text
    again = await admin(pos, "/v1/admin/jobs/expire-points", as_of=expire_at.isoformat())
    assert again.status_code == 200

    gone = (await pos.balance(customer)).json()
    assert (gone["available"], gone["pending"], gone["debt"]) == (0, 0, 0)
    assert gone["lifetime_earned"] == 100 + 1_100 + 125
    expiries = [e for e in await ledger_of(pos, customer) if e["kind"] == "expire"]
    assert sum(e["points"] for e in expiries) == -805  # once, though the job ran twice

    async def announced() -> tuple[list[int], list[int]] | None:
        found = await events_for(pipeline.stack.kafka, topics.POINTS, customer)
        expiring = sorted(e.data["points"] for e in found if e.type == events.POINTS_EXPIRING)
        expired_points = sorted(e.data["points"] for e in found if e.type == events.POINTS_EXPIRED)
        return (expiring, expired_points) if sum(expired_points) == 805 else None

    # The welcome lot was spent first (it expires first), so two lots were left: purchase 1's
    # 1,100 - 220 reversed - 200 redeemed, and purchase 2's 125. Each is warned of once,
    # though the warning job ran twice.
    expiring, expired_points = await eventually(
        announced, within=WITHIN, what="points.expiring and points.expired on Kafka"
    )
    assert expiring == expired_points == [125, 680]
