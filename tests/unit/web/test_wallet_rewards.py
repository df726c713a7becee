"""Rewards and coupons: the catalogue as points judges it for the member, the redeem form
(CSRF token and an Idempotency-Key in it) and its effect, the coupon page (code, QR image) for
the member's own coupon only, and the coupons list."""

from __future__ import annotations

import re

from services.web.api.routers import wallet_rewards
from tests.support.fakes.web import FakeServices
from tests.support.web_pages import CSRF, member, pages

REWARD = {
    "id": "r-coffee",
    "name": "Free coffee",
    "points_cost": 150,
    "kind": "coupon",
    "description": "A coffee of your choice",
    "affordable": True,
    "redeemable": True,
    "why_not": [],
}
LOCKED = {
    **REWARD,
    "id": "r-spa",
    "name": "Spa day",
    "points_cost": 5000,
    "affordable": False,
    "redeemable": False,
    "why_not": ["tier", "points"],
}
COUPON = {
    "coupon_id": "cp-1",
    "code": "ABCD-EFGH-JKLM-NPQR",
    "customer_id": "c-1",
    "reward_id": "r-coffee",
    "reward": "Free coffee",
    "redemption_id": "e-1",
    "points": 150,
    "status": "issued",
    "issued_at": "2026-12-01T12:00:00+00:00",
    "expires_at": "2026-12-31T12:00:00+00:00",
    "redeemed_at": None,
    "partner_id": None,
    "store_id": None,
    "purchase_id": None,
    "points_returned": None,
}


def catalogue() -> FakeServices:
    services = FakeServices()
    services.answer(
        "GET",
        "points",
        r"/v1/customers/c-1/rewards",
        {"customer_id": "c-1", "available": 400, "rewards": [REWARD, LOCKED]},
    )
    services.answer(
        "GET", "points", r"/v1/customers/c-1/coupons", {"customer_id": "c-1", "coupons": [COUPON]}
    )
    return services


async def test_the_catalogue_shows_what_the_member_may_redeem_and_why_not() -> None:
    services = catalogue()
    async with pages([wallet_rewards.router], services, who=member("c-1")) as client:
        response = await client.get("/wallet/rewards", params={"lang": "en"})
    page = response.text
    assert response.status_code == 200
    assert "You have 400 points to spend." in page
    assert "Redeem Free coffee for 150 points" in page
    assert "needs a higher tier; not enough points" in page
    assert page.count('action="/wallet/rewards/redeem"') == 1  # the spa day has no form
    assert f'name="csrf_token" value="{CSRF}"' in page
    assert re.search(r'name="idempotency_key" value="[0-9a-f-]{36}"', page)
    assert 'href="/wallet/coupons/cp-1"' in page and "Ready to use" in page
    assert {c.actor for c in services.calls} == {"member:c-1"}


async def test_each_redeem_form_carries_a_key_of_its_own() -> None:
    services = FakeServices()
    tea = {**REWARD, "id": "r-tea", "name": "Free tea"}
    listed = {"customer_id": "c-1", "available": 400, "rewards": [REWARD, tea]}
    services.answer("GET", "points", r"/v1/customers/c-1/rewards", listed)
    async with pages([wallet_rewards.router], services, who=member("c-1")) as client:
        first = (await client.get("/wallet/rewards")).text
        second = (await client.get("/wallet/rewards")).text
    found = r'name="idempotency_key" value="([0-9a-f-]{36})"'
    keys = re.findall(found, first) + re.findall(found, second)
    assert len(keys) == 4 and len(set(keys)) == 4


async def test_redeeming_calls_points_with_the_form_s_key_and_shows_the_coupon() -> None:
    services = catalogue()
    services.answer(
        "POST",
        "points",
        r"/v1/customers/c-1/redemptions",
        {
            "redemption_id": "e-1",
            "points": 150,
            "reward_id": "r-coffee",
            "coupon": {"coupon_id": "cp-1", "code": "ABCD", "expires_at": "2026-12-31T00:00Z"},
            "available_after": 250,
        },
        status=201,
    )
    key = "0f8fad5b-d9cb-469f-a165-70867728950e"
    form = {"csrf_token": CSRF, "reward_id": "r-coffee", "idempotency_key": key}
    async with pages([wallet_rewards.router], services, who=member("c-1")) as client:
        response = await client.post("/wallet/rewards/redeem", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == "/wallet/coupons/cp-1?done=wallet.redeemed"
    (call,) = services.sent("POST", "points")
    assert call.path == "/v1/customers/c-1/redemptions"
    assert call.body == {"reward_id": "r-coffee"} and call.idempotency_key == key
    assert call.actor == "member:c-1"


async def test_a_refused_redemption_says_why() -> None:
    services = catalogue()
    refusal = {"type": "urn:fedelta:problem:reward-unavailable", "reasons": ["stock"]}
    services.answer("POST", "points", r"/v1/customers/c-1/redemptions", refusal, status=409)
    form = {
        "csrf_token": CSRF,
        "reward_id": "r-coffee",
        "idempotency_key": "0f8fad5b-d9cb-469f-a165-70867728950e",
    }
    async with pages([wallet_rewards.router], services, who=member("c-1")) as client:
        response = await client.post("/wallet/rewards/redeem?lang=en", data=form)
    assert response.status_code == 409
    assert 'role="alert"' in response.text
    assert "cannot be redeemed now" in response.text and "out of stock" in response.text


async def test_a_redeem_form_without_the_session_s_token_is_refused() -> None:
    services = catalogue()
    form = {
        "csrf_token": "forged",
        "reward_id": "r-coffee",
        "idempotency_key": "0f8fad5b-d9cb-469f-a165-70867728950e",
    }
    async with pages([wallet_rewards.router], services, who=member("c-1")) as client:
        response = await client.post("/wallet/rewards/redeem", data=form)
    assert response.status_code == 403
    assert services.sent("POST", "points") == []


async def test_the_coupon_page_shows_the_code_and_its_qr_code() -> None:
    services = FakeServices()
    services.answer("GET", "points", r"/v1/coupons/cp-1", COUPON)
    async with pages([wallet_rewards.router], services, who=member("c-1")) as client:
        response = await client.get(
            "/wallet/coupons/cp-1", params={"done": "wallet.redeemed", "lang": "en"}
        )
    page = response.text
    assert response.status_code == 200
    assert '<p class="code">ABCD-EFGH-JKLM-NPQR</p>' in page
    assert 'src="data:image/svg+xml' in page
    assert 'alt="QR code of the coupon code ABCD-EFGH-JKLM-NPQR"' in page
    assert 'role="status"' in page and "Reward redeemed" in page


async def test_another_member_s_coupon_is_not_found() -> None:
    services = FakeServices()
    services.answer("GET", "points", r"/v1/coupons/cp-1", {**COUPON, "customer_id": "c-2"})
    async with pages([wallet_rewards.router], services, who=member("c-1")) as client:
        response = await client.get("/wallet/coupons/cp-1")
    assert response.status_code == 404
    assert "ABCD-EFGH-JKLM-NPQR" not in response.text


async def test_points_away_is_said_on_the_page() -> None:
    services = catalogue()
    services.down.add("points")
    async with pages([wallet_rewards.router], services, who=member("c-1")) as client:
        listed = await client.get("/wallet/rewards", params={"lang": "en"})
        coupon = await client.get("/wallet/coupons/cp-1")
    assert listed.status_code == 200 and "unavailable right now: points" in listed.text
    assert coupon.status_code == 503
