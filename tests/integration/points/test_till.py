"""The till scope on the real PostgreSQL and Kafka: the till token opens only the till's
routes (every other route of points answers 403), names its partner (400 without), records
the partner and store on free-form redemptions and holds (a capture announces them), and
keeps two partners' Idempotency-Keys apart."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncEngine

from services.points.adapters.tables import holds, ledger_entries
from services.points.api.app import create_app
from services.points.settings import PointsSettings
from shared.messaging import events, topics
from tests.integration.points.support import customer_with_lots
from tests.support.kafka import events_for
from tests.support.polling import eventually
from tests.support.services import ADMIN, running, settings_for
from tests.support.stack import Stack, sha256_hex

pytestmark = pytest.mark.integration

TILL_TOKEN = "test-till-token-0123456789abcdef"
TILL_ROUTES = {
    ("GET", "/v1/customers/{customer_id}/balance"),
    ("GET", "/v1/customers/{customer_id}/rewards"),
    ("POST", "/v1/customers/{customer_id}/redemptions"),
    ("POST", "/v1/customers/{customer_id}/holds"),
    ("POST", "/v1/holds/{hold_id}/capture"),
    ("POST", "/v1/holds/{hold_id}/void"),
    ("POST", "/v1/coupons/{code}/redeem"),
}


def till(partner: str, store: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {TILL_TOKEN}", "Fedelta-Partner-Id": partner}
    return headers if store is None else {**headers, "Fedelta-Store-Id": store}


@pytest.fixture(scope="module")
async def app_and_client(stack: Stack) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    stack.migrate("points")
    settings = settings_for(
        PointsSettings, stack, "points", till_token_sha256=sha256_hex(TILL_TOKEN)
    )
    async with running(create_app, settings) as (app, client):
        yield app, client


@pytest.fixture(scope="module")
def points(app_and_client: tuple[Any, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_and_client[1]


def _api_routes(routes: Iterable[object]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(included.routes)


async def test_the_till_token_is_refused_on_every_other_route(
    app_and_client: tuple[Any, httpx.AsyncClient],
) -> None:
    app, points = app_and_client
    tried = 0
    for route in _api_routes(app.routes):
        if not route.path.startswith("/v1/"):
            continue
        path = re.sub(r"\{[^}]+\}", "x-1", route.path)
        for method in route.methods or ():
            if (method, route.path) in TILL_ROUTES:
                continue
            response = await points.request(method, path, json={}, headers=till("p-1"))
            assert response.status_code == 403, (method, route.path, response.text)
            tried += 1
    assert tried >= 15


async def test_a_till_call_names_its_partner(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (100, 30))
    url = f"/v1/customers/{customer}/balance"
    no_partner = await points.get(url, headers={"Authorization": f"Bearer {TILL_TOKEN}"})
    assert no_partner.status_code == 400
    assert no_partner.json()["type"].endswith(":invalid-partner-id")
    balance = await points.get(url, headers=till("p-1", "s-1"))
    assert balance.status_code == 200 and balance.json()["available"] == 100


async def test_a_free_form_redemption_at_a_till_names_its_partner_and_store(
    stack: Stack, points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (100, 30))
    response = await points.post(
        f"/v1/customers/{customer}/redemptions",
        json={"points": 30, "reward": "coffee"},
        headers=till("p-cafe", "s-3"),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["reward_id"], body["coupon"], body["available_after"]) == (None, None, 70)
    async with engine.connect() as conn:
        entry = (
            await conn.execute(
                sa.select(ledger_entries).where(ledger_entries.c.entry_id == body["redemption_id"])
            )
        ).one()
    assert (entry.partner_id, entry.store_id, entry.reward_id) == ("p-cafe", "s-3", None)

    async def announced() -> Any:
        found = [
            e
            for e in await events_for(stack.kafka, topics.POINTS, customer)
            if e.type == events.POINTS_REDEEMED
        ]
        return found or None

    (event,) = await eventually(announced, what="points.redeemed")
    assert (event.data["partner_id"], event.data["store_id"]) == ("p-cafe", "s-3")


async def test_a_hold_at_a_till_keeps_its_partner_for_the_capture(
    stack: Stack, points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (100, 30))
    placed = await points.post(
        f"/v1/customers/{customer}/holds",
        json={"points": 40, "reward": "lunch"},
        headers=till("p-deli", "s-8"),
    )
    assert placed.status_code == 201, placed.text
    hold_id = placed.json()["hold_id"]
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(holds).where(holds.c.hold_id == hold_id))).one()
    assert (row.partner_id, row.store_id) == ("p-deli", "s-8")
    elsewhere = await points.post(f"/v1/holds/{hold_id}/capture", headers=till("p-other"))
    assert elsewhere.status_code == 404
    captured = await points.post(f"/v1/holds/{hold_id}/capture", headers=till("p-deli"))
    assert captured.status_code == 200, captured.text

    async def announced() -> Any:
        found = [
            e
            for e in await events_for(stack.kafka, topics.POINTS, customer)
            if e.type == events.POINTS_REDEEMED
        ]
        return found or None

    (event,) = await eventually(announced, what="points.redeemed of the capture")
    assert (event.data["redemption_id"], event.data["partner_id"], event.data["store_id"]) == (
        hold_id,
        "p-deli",
        "s-8",
    )


async def test_two_partners_never_share_an_idempotency_key(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (100, 30))
    url = f"/v1/customers/{customer}/redemptions"
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"points": 10, "reward": "coffee"}
    one = await points.post(url, json=body, headers={**till("p-a"), **key})
    replay = await points.post(url, json=body, headers={**till("p-a"), **key})
    other = await points.post(url, json=body, headers={**till("p-b"), **key})
    assert (one.status_code, replay.status_code, other.status_code) == (201, 201, 201)
    assert replay.json() == one.json() and replay.headers.get("Idempotent-Replayed") == "true"
    assert other.json()["redemption_id"] != one.json()["redemption_id"]
    assert "Idempotent-Replayed" not in other.headers
    admin = await points.post(url, json=body, headers={**ADMIN, **key})
    assert admin.status_code == 201 and admin.json()["available_after"] == 70


async def test_a_till_holds_void_gives_back_under_the_same_partner(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (100, 30))
    placed = await points.post(
        f"/v1/customers/{customer}/holds",
        json={"points": 25, "reward": "lunch"},
        headers=till("p-deli", "s-8"),
    )
    hold_id = placed.json()["hold_id"]
    voided = await points.post(f"/v1/holds/{hold_id}/void", headers=till("p-deli"))
    assert voided.status_code == 200, voided.text
    async with engine.connect() as conn:
        release = (
            await conn.execute(
                sa.select(ledger_entries).where(ledger_entries.c.entry_id == f"{hold_id}:void")
            )
        ).one()
    assert (release.kind, release.points) == ("release", 25)
    assert (release.partner_id, release.store_id) == ("p-deli", "s-8")
