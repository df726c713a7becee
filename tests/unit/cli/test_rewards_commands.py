"""`fedelta rewards` and `fedelta coupon`: what they send to points, and what they show."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from rich.console import Console

from fedelta_cli import operations
from fedelta_client import InternalClient
from fedelta_client.internal import ServiceUrls

URLS = ServiceUrls("http://ingest", "http://points", "http://tiers", "http://notifications")
REWARD = {
    "id": "rw-1",
    "name": "Free coffee",
    "points_cost": 150,
    "kind": "coupon",
    "value": None,
    "partner_id": "cafe",
    "min_tier": None,
    "stock": 100,
    "redeemed": 3,
    "per_customer_limit": 2,
}


def client(handler: Callable[[httpx.Request], httpx.Response]) -> InternalClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return InternalClient(http, urls=URLS, token="admin-token")


async def test_creating_a_reward_sends_only_the_options_given() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=REWARD)

    body = operations.reward_body(
        name="Free coffee", points_cost=150, kind="coupon", partner_id="cafe", stock=None
    )
    answer = await client(handler).create_reward(body)
    assert answer["id"] == "rw-1"
    (request,) = seen
    assert (request.method, str(request.url)) == ("POST", "http://points/v1/rewards")
    assert request.headers["authorization"] == "Bearer admin-token"
    assert json.loads(request.content) == {
        "name": "Free coffee",
        "points_cost": 150,
        "kind": "coupon",
        "partner_id": "cafe",
    }


@pytest.mark.parametrize(("include_ended", "query"), [(False, ""), (True, "include_ended=true")])
async def test_listing_rewards_asks_for_ended_ones_only_when_told(
    include_ended: bool, query: str
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": [REWARD]})

    assert await client(handler).rewards(include_ended) == [REWARD]
    assert seen[0].url.query.decode() == query


def test_the_catalogue_shows_price_partner_and_stock_left() -> None:
    console = Console(record=True, width=160)
    operations.render_rewards([REWARD, REWARD | {"id": "rw-2", "stock": None}], console)
    text = console.export_text()
    assert "Free coffee" in text and "150" in text and "cafe" in text
    assert "3/100" in text and "unlimited" in text


def test_a_coupon_shows_its_code_as_text_and_as_a_qr_code() -> None:
    coupon: dict[str, Any] = {
        "coupon_id": "cp-1",
        "customer_id": "alice",
        "reward": "Free coffee",
        "status": "issued",
        "expires_at": "2027-01-05T10:00:00Z",
        "code": "ABCD-EFGH-JKMN-PQRS",
    }
    console = Console(record=True, width=160)
    operations.render_coupon(coupon, console)
    text = console.export_text()
    assert "ABCD-EFGH-JKMN-PQRS" in text and "issued" in text
    # The QR code is drawn with block characters, several rows of them.
    assert sum(1 for line in text.splitlines() if "█" in line) >= 10
