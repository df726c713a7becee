"""The till calls of fedelta_client's PosClient against a stand-in ingest (httpx's
MockTransport): signed as ingest verifies, a POST always with an Idempotency-Key, a retry
always with the same key and body, and what comes back."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from fedelta_client import PosClient, Refused, RetryPolicy, TillAnswer, Unavailable
from shared.web.auth import SIGNATURE_HEADER, verify_signature

SECRET = "fs_secret"


class Sleeps:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def client(handler: Any, sleeps: Sleeps | None = None) -> PosClient:
    return PosClient(
        httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        ingest_url="http://ingest/",
        partner_key="fk_key",
        partner_secret=SECRET,
        retry=RetryPolicy(attempts=3, backoff_s=0.5, sleep=sleeps or Sleeps()),
    )


def verified(request: httpx.Request) -> None:
    verify_signature(
        SECRET,
        request.headers[SIGNATURE_HEADER],
        request.method,
        request.url.raw_path,
        request.content,
        datetime.now(UTC),
    )


async def test_every_till_call_is_signed_and_every_post_keyed() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        verified(request)
        seen.append(request)
        return httpx.Response(200 if request.method == "GET" else 201, json={"ok": True})

    pos = client(answer)
    assert await pos.till_balance("c-1") == {"ok": True}
    assert await pos.customer_rewards("c-1") == {"ok": True}
    await pos.redeem("c-1", 50, "coffee", store_id="s-1")
    await pos.redeem("c-1", reward_id="rw-1")
    await pos.hold("c-1", 10, "cake")
    await pos.capture("h-1")
    await pos.void("h-2")
    await pos.redeem_coupon("K7QM-4XPD", store_id="s-1", purchase_id="p-1")
    calls = [(r.method, r.url.path, json.loads(r.content) if r.content else None) for r in seen]
    assert calls == [
        ("GET", "/v1/customers/c-1/balance", None),
        ("GET", "/v1/customers/c-1/rewards", None),
        (
            "POST",
            "/v1/customers/c-1/redemptions",
            {"points": 50, "reward": "coffee", "store_id": "s-1"},
        ),
        ("POST", "/v1/customers/c-1/redemptions", {"reward_id": "rw-1"}),
        ("POST", "/v1/customers/c-1/holds", {"points": 10, "reward": "cake"}),
        ("POST", "/v1/holds/h-1/capture", None),
        ("POST", "/v1/holds/h-2/void", None),
        ("POST", "/v1/coupons/K7QM-4XPD/redeem", {"store_id": "s-1", "purchase_id": "p-1"}),
    ]
    assert all("idempotency-key" not in r.headers for r in seen[:2])
    keys = [r.headers["idempotency-key"] for r in seen[2:]]
    assert len(set(keys)) == len(keys)


async def test_an_unknown_outcome_is_retried_with_the_same_key_and_body() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(
                503,
                json={"type": "urn:fedelta:problem:points-outcome-unknown"},
                headers={"Retry-After": "1"},
            )
        return httpx.Response(
            201, json={"redemption_id": "r-1"}, headers={"Idempotent-Replayed": "true"}
        )

    sleeps = Sleeps()
    got = await client(answer, sleeps).redeem("c-1", 5, "tea", idempotency_key="k-1")
    assert got == TillAnswer(201, {"redemption_id": "r-1"}, "k-1", replayed=True)
    assert [r.headers["idempotency-key"] for r in seen] == ["k-1", "k-1"]
    assert seen[0].content == seen[1].content
    assert sleeps.seconds == [1.0]


async def test_a_refusal_is_raised_with_points_problem() -> None:
    def used(request: httpx.Request) -> httpx.Response:
        problem = {"type": "urn:fedelta:problem:coupon-used", "detail": "already used"}
        return httpx.Response(409, json=problem)

    with pytest.raises(Refused) as refused:
        await client(used).redeem_coupon("K7QM-4XPD")
    assert refused.value.status_code == 409
    assert refused.value.problem["type"] == "urn:fedelta:problem:coupon-used"


async def test_no_definite_answer_is_unavailable_with_the_key_to_retry_with() -> None:
    def away(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={}, headers={"Retry-After": "1"})

    with pytest.raises(Unavailable) as unavailable:
        await client(away).hold("c-1", 5, "tea", idempotency_key="k-9")
    assert unavailable.value.idempotency_key == "k-9"

    def failed(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, json={"type": "urn:fedelta:problem:points-failed"})

    with pytest.raises(Unavailable):
        await client(failed).capture("h-1")


async def test_a_purchase_names_the_redemption_that_paid_for_part_of_it() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json={"event_id": "e-1"})

    await client(answer).purchase("c-1", "20.00", "p-1", redemption_id="r-1")
    await client(answer).purchase("c-1", "20.00", "p-2")
    assert json.loads(seen[0].content)["redemption_id"] == "r-1"
    assert "redemption_id" not in json.loads(seen[1].content)
