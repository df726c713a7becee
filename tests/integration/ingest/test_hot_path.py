"""The hot path of `POST /v1/purchases` answers exactly as the documented route does.

`services/ingest/api/fast_purchases.py` takes the purchases that are in order without
FastAPI's per-request machinery and hands every other call to the documented route. Here the
same story of calls — accepted, retried, keyed, refused for each reason the edge has — is told
to the app as it runs and to a twin without the hot path, on the same database, and every
answer (status, content type, replay header, body) must be the same.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.ingest.api.app import create_app
from services.ingest.api.fast_purchases import FastPurchaseRoute
from services.ingest.settings import IngestSettings
from shared.messaging import topics
from shared.settings import ServiceSettings
from tests.integration.ingest.support import Pos, iso, published, unique
from tests.support.services import ADMIN, running
from tests.support.stack import Stack

Answer = tuple[int, str, str | None, str]
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_AGE = re.compile(r"[0-9]+s away")  # a stale signature's age: a second more on a slow machine


def documented_route_only(settings: ServiceSettings) -> FastAPI:
    app = create_app(settings)
    app.router.routes[:] = [r for r in app.router.routes if not isinstance(r, FastPurchaseRoute)]
    return app


@pytest.fixture(scope="module")
async def twin(settings: IngestSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(documented_route_only, settings) as (_, client):
        yield client


@pytest.fixture(scope="module")
async def partner(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post(
        "/v1/admin/partners",
        json={"name": "Hot Path Bar", "partner_id": unique("p")},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


def pos_on(client: httpx.AsyncClient, partner: dict[str, str]) -> Pos:
    return Pos(client, partner["partner_id"], partner["api_key"], partner["signing_secret"])


async def story(pos: Pos, customer_id: str, run: str) -> list[Answer]:
    """Every kind of call the edge meets, in an order where some depend on earlier ones."""
    occurred_at = iso(datetime.now(UTC) - timedelta(minutes=1))

    def body(purchase_id: str, **fields: Any) -> dict[str, Any]:
        return {
            "purchase_id": f"{run}-{purchase_id}",
            "customer_id": customer_id,
            "occurred_at": occurred_at,
            "currency": "EUR",
            "total": "49.99",
            **fields,
        }

    path = "/v1/purchases"
    key = {"Idempotency-Key": f"{run}-key"}
    calls = [
        pos.send("POST", path, body("a")),
        pos.send("POST", path, body("a")),  # a retry: the same answer
        pos.send("POST", path, body("a", total="50.00")),  # the id reused: 409
        pos.send("POST", path, body("b"), headers=key),
        pos.send("POST", path, body("b"), headers=key),  # replayed
        pos.send("POST", path, body("c"), headers=key),  # the key reused: 409
        pos.send("POST", f"{path}?till=7", body("d")),  # a query, signed with the path
        pos.send(
            "POST", path, body("e", items=[{"sku": "x", "quantity": 1, "unit_price": "49.99"}])
        ),
        pos.send("POST", path, body("f"), signed_body=b"{}"),
        pos.send("POST", path, body("g"), api_key="fk_unknown"),
        pos.send("POST", path, body("h"), timestamp=int(time.time()) - 3600),
        pos.send("POST", path, body("i"), headers={"Authorization": "Basic x"}),
        pos.send("POST", path, raw=b'{"purchase_id": '),
        pos.send("POST", path, raw=b'{"purchase_id": "x", "purchase_id": "y"}'),
        pos.send("POST", path, raw=json.dumps(body("j")).replace('"49.99"', "49.99").encode()),
        pos.send("POST", path, raw=b"[]"),
        pos.send("POST", path, body("k", partner_id="other")),
        pos.send("POST", path, body("l", currency="USD")),
        pos.send("POST", path, body("m", customer_id=f"{run}-nobody")),
        pos.send("POST", path, body("n", occurred_at=iso(datetime.now(UTC) + timedelta(hours=1)))),
        pos.send("POST", path, body("o"), headers={"Idempotency-Key": "k" * 256}),
        pos.send("POST", path, body("p"), headers={"Content-Type": "text/plain"}),
        pos.send(
            "POST", path, body("q"), headers={"Content-Type": "application/json; charset=utf-8"}
        ),
        pos.send("POST", path, raw=b'{"x": "' + b"y" * 70_000 + b'"}'),
    ]
    return [_answer(await call, run) for call in calls]


def _answer(response: httpx.Response, run: str) -> Answer:
    text = _AGE.sub("<age> away", _UUID.sub("<uuid>", response.text.replace(run, "<run>")))
    return (
        response.status_code,
        response.headers.get("content-type", ""),
        response.headers.get("idempotent-replayed"),
        text,
    )


def test_the_hot_path_comes_before_the_documented_route(settings: IngestSettings) -> None:
    assert isinstance(create_app(settings).router.routes[0], FastPurchaseRoute)


async def test_the_hot_path_answers_every_call_as_the_documented_route(
    client: httpx.AsyncClient, twin: httpx.AsyncClient, partner: dict[str, str]
) -> None:
    fast, documented = pos_on(client, partner), pos_on(twin, partner)
    customer_id = unique("cust")
    assert (await fast.enrol(customer_id)).status_code == 202

    through_fast = await story(fast, customer_id, unique("fast"))
    through_documented = await story(documented, customer_id, unique("doc"))

    assert through_fast == through_documented
    statuses = [status for status, *_ in through_fast]
    assert statuses == [202] * 2 + [409] + [202] * 2 + [409] + [202] * 2 + [401] * 4 + [422] * 8 + [
        400,
        422,
        202,
        413,
    ], statuses


async def test_a_retry_gets_the_event_id_of_the_first_answer_on_either_path(
    client: httpx.AsyncClient, twin: httpx.AsyncClient, partner: dict[str, str]
) -> None:
    fast, documented = pos_on(client, partner), pos_on(twin, partner)
    customer_id = unique("cust")
    assert (await fast.enrol(customer_id)).status_code == 202
    body = {
        "purchase_id": unique("buy"),
        "customer_id": customer_id,
        "occurred_at": iso(datetime.now(UTC)),
        "currency": "EUR",
        "total": "12.30",
    }
    first = await fast.send("POST", "/v1/purchases", body)
    again = await documented.send("POST", "/v1/purchases", body)
    once_more = await fast.send("POST", "/v1/purchases", body)
    assert first.status_code == again.status_code == once_more.status_code == 202
    assert first.json() == again.json() == once_more.json()
    metrics = (await client.get("/metrics")).text
    assert 'route="/v1/purchases",status="202"' in metrics


async def test_a_purchase_paid_partly_with_points_is_taken_alike_on_either_path(
    client: httpx.AsyncClient, twin: httpx.AsyncClient, partner: dict[str, str], stack: Stack
) -> None:
    fast, documented = pos_on(client, partner), pos_on(twin, partner)
    customer_id = unique("cust")
    assert (await fast.enrol(customer_id)).status_code == 202
    run = unique("tender")
    occurred_at = iso(datetime.now(UTC) - timedelta(minutes=1))

    def body(purchase_id: str, redemption_id: object) -> dict[str, Any]:
        return {
            "purchase_id": f"{run}-{purchase_id}",
            "customer_id": customer_id,
            "occurred_at": occurred_at,
            "currency": "EUR",
            "total": "20.00",
            "redemption_id": redemption_id,
        }

    answers = []
    for pos in (fast, documented):
        which = "f" if pos is fast else "d"
        calls = [
            await pos.send("POST", "/v1/purchases", body(f"{which}1", "r-1")),
            await pos.send("POST", "/v1/purchases", body(f"{which}1", "r-1")),  # a retry
            await pos.send("POST", "/v1/purchases", body(f"{which}1", "r-2")),  # another: 409
            await pos.send("POST", "/v1/purchases", body(f"{which}2", "r 1")),  # unbounded: 422
            await pos.send("POST", "/v1/purchases", body(f"{which}3", None)),
        ]
        answers.append([(r.status_code, r.headers.get("content-type")) for r in calls])
    assert answers[0] == answers[1]
    assert [status for status, _ in answers[0]] == [202, 202, 409, 422, 202]
    events = await published(stack, topics.PURCHASES, customer_id, 4)
    carried = {
        event.data["purchase_id"]: event.data.get("redemption_id")
        for event in events
        if event.type == "fedelta.purchase.completed.v1"
    }
    assert carried == {
        f"{run}-f1": "r-1",
        f"{run}-d1": "r-1",
        f"{run}-f3": None,
        f"{run}-d3": None,
    }
