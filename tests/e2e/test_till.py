"""End to end over HTTP: a till's calls about points through ingest (signed with the partner's
key) and on to the real points service with the till token, which the till never sees.

A member earns through a purchase; the till reads the balance, redeems points (free-form)
and names the redemption on the purchase it paid for, places and captures a hold, redeems a
reward of the catalogue and uses its coupon once (then 409). Unsigned and wrongly signed
calls are refused by ingest (401) before anything reaches points, and a captured signed
redemption sent again under a new Idempotency-Key is refused (409) and spends nothing."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from fedelta_client import Refused, StackClient, TillAnswer
from tests.e2e.conftest import Pipeline
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e

WITHIN = 90  # seconds: two cores shared with the whole stack and other test stacks


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def member_with_points(pos: StackClient, at_least: int) -> str:
    """An enrolled member whose balance, as the till reads it through ingest, has at least
    `at_least` points (the welcome bonus and a purchase's earning)."""
    customer = unique("till")
    await pos.enrol(customer, f"{customer}@example.com")
    await pos.purchase(customer, "300.00")

    async def rich() -> dict[str, Any] | None:
        try:
            balance = await pos.till_balance(customer)
        except Refused:  # 404 until points has heard of the member
            return None
        return balance if balance["available"] >= at_least else None

    await eventually(rich, within=WITHIN, what=f"{at_least} points for {customer}")
    return customer


async def test_a_tills_balance_redemption_tender_and_hold_go_through_ingest(
    pos: StackClient,
) -> None:
    customer = await member_with_points(pos, 200)
    balance = await pos.till_balance(customer)
    assert balance["customer_id"] == customer

    key = str(uuid.uuid4())
    redeemed = await pos.redeem(customer, 50, "coffee", store_id="s-till-1", idempotency_key=key)
    assert redeemed.status_code == 201
    assert redeemed.body["points"] == 50
    assert redeemed.body["available_after"] == balance["available"] - 50
    again = await pos.redeem(customer, 50, "coffee", store_id="s-till-1", idempotency_key=key)
    assert again.replayed and again.body == redeemed.body  # once, whatever the retries

    paid = await pos.purchase(customer, "20.00", redemption_id=redeemed.body["redemption_id"])
    assert paid.status_code == 202

    hold = await pos.hold(customer, 30, "cake", store_id="s-till-1")
    assert hold.status_code == 201
    captured = await pos.capture(hold.body["hold_id"])
    assert (captured.status_code, captured.body["status"]) == (200, "captured")
    assert (await pos.capture(hold.body["hold_id"])).body["status"] == "captured"


async def test_a_till_call_unsigned_or_wrongly_signed_is_refused_by_ingest(
    pos: StackClient,
) -> None:
    path = "/v1/customers/anyone/balance"
    unsigned = await pos.http.get(
        f"{pos.ingest_url}{path}", headers={"Authorization": f"Bearer {pos.partner_key}"}
    )
    assert unsigned.status_code == 401
    forged = await pos.send("GET", path, secret="not-the-partners-secret")
    assert forged.status_code == 401
    no_key = await pos.http.get(f"{pos.env.points_url}{path}")
    assert no_key.status_code == 401  # and points itself takes no call without a token


async def test_a_redemption_without_a_key_is_428(pos: StackClient) -> None:
    response = await pos.send(
        "POST", "/v1/customers/anyone/redemptions", {"points": 5, "reward": "tea"}
    )
    assert response.status_code == 428
    assert response.json()["type"] == "urn:fedelta:problem:idempotency-key-required"


async def create_reward(pos: StackClient, points_cost: int) -> str:
    response = await pos.admin_post(
        f"{pos.env.points_url}/v1/rewards",
        {"name": unique("Free espresso"), "points_cost": points_cost, "kind": "coupon"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.text
    reward_id: str = response.json()["id"]
    return reward_id


async def test_a_reward_is_redeemed_at_the_till_and_its_coupon_used_once(
    pos: StackClient, pipeline: Pipeline
) -> None:
    reward_id = await create_reward(pos, 40)
    customer = await member_with_points(pos, 100)
    rewards = await pos.customer_rewards(customer)
    offered = {item["id"]: item for item in rewards["rewards"]}
    assert offered[reward_id]["redeemable"] and offered[reward_id]["why_not"] == []

    redeemed: TillAnswer = await pos.redeem(customer, reward_id=reward_id, store_id="s-till-2")
    assert redeemed.status_code == 201
    assert redeemed.body["reward_id"] == reward_id
    code = redeemed.body["coupon"]["code"]

    used = await pos.redeem_coupon(code, store_id="s-till-2")
    assert used.status_code == 200
    assert used.body["status"] == "redeemed"
    assert used.body["partner_id"] == pos.env.partner_id
    assert used.body["store_id"] == "s-till-2"
    with pytest.raises(Refused) as again:
        await pos.redeem_coupon(code, store_id="s-till-2")
    assert again.value.status_code == 409
    assert again.value.problem["type"] == "urn:fedelta:problem:coupon-used"
    with pytest.raises(Refused) as unknown:
        await pos.redeem_coupon("NO-SUCH-COUPON-1")
    assert unknown.value.status_code == 404
    # A code is a bearer secret: ingest, which saw it in three paths, never logged it.
    assert code not in (pipeline.stack.state_dir / "logs" / "ingest.log").read_text()


async def test_points_never_sees_a_tills_credentials(pos: StackClient) -> None:
    """The partner's API key is not a points token: points refuses it."""
    response = await pos.http.get(
        f"{pos.env.points_url}/v1/customers/anyone/balance",
        headers={"Authorization": f"Bearer {pos.partner_key}"},
    )
    assert response.status_code == 401


async def test_a_captured_signed_redemption_resent_under_a_new_key_spends_nothing(
    pos: StackClient,
) -> None:
    """The signature does not cover the Idempotency-Key: whoever captured a signed redemption
    could send it again within the signature's five minutes under a key of their own. Ingest
    refuses it (409 `signature-replayed`) before points spends anything; the till's own retry
    with its key still gets points' first answer."""
    customer = await member_with_points(pos, 100)
    path = f"/v1/customers/{customer}/redemptions"
    body = {"points": 20, "reward": "coffee", "store_id": "s-till-3"}
    signed_at = int(time.time())
    key = str(uuid.uuid4())
    first = await pos.send("POST", path, body, idempotency_key=key, signed_at=signed_at)
    assert first.status_code == 201, first.text
    replayed = await pos.send(
        "POST", path, body, idempotency_key=str(uuid.uuid4()), signed_at=signed_at
    )
    assert replayed.status_code == 409, replayed.text
    assert replayed.json()["type"] == "urn:fedelta:problem:signature-replayed"
    retried = await pos.send("POST", path, body, idempotency_key=key, signed_at=signed_at)
    assert retried.status_code == 201
    assert retried.headers.get("idempotent-replayed") == "true"
    assert retried.json() == first.json()
    # One spend in points' ledger, whatever else (the purchase's earning) lands meanwhile.
    ledger = await pos.ledger(customer)
    assert ledger.status_code == 200, ledger.text
    spends = [entry for entry in ledger.json()["entries"] if entry["kind"] == "redeem"]
    assert [(entry["points"], entry["reason"]) for entry in spends] == [(-20, "coffee")]
