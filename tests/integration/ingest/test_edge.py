"""The edge, hardened: what ingest and the read APIs refuse, and how (issue 6: 1, 3, 4, 8, 9).

Every refusal is a 4xx problem+json, never a 500, and stores nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.adapters import tables
from services.points.api.app import create_app as create_points_app
from services.points.settings import PointsSettings
from tests.integration.ingest.support import Pos, assert_problem, count_rows, iso, unique
from tests.support.services import ADMIN, READER, running, settings_for
from tests.support.stack import Stack


@pytest.fixture(scope="module")
async def pos(client: httpx.AsyncClient) -> Pos:
    response = await client.post(
        "/v1/admin/partners", json={"name": "Edge Café", "partner_id": unique("p")}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    created = response.json()
    return Pos(client, created["partner_id"], created["api_key"], created["signing_secret"])


@pytest.fixture
async def customer_id(pos: Pos) -> str:
    customer_id = unique("cust")
    assert (await pos.enrol(customer_id)).status_code == 202
    return customer_id


async def assert_nothing_stored(db: AsyncEngine, purchase_id: str) -> None:
    purchases = tables.purchases.c
    assert await count_rows(db, tables.purchases, purchases.purchase_id == purchase_id) == 0


class TestDates:
    async def test_a_purchase_reported_800_days_late_is_refused(
        self, pos: Pos, customer_id: str, db: AsyncEngine
    ) -> None:
        purchase_id = unique("buy")
        late = iso(datetime.now(UTC) - timedelta(days=800))
        response = await pos.purchase(customer_id, purchase_id, occurred_at=late)
        problem = assert_problem(response, 422)
        assert problem["type"] == "urn:fedelta:problem:reported-too-late"
        assert "30 days" in problem["detail"]
        await assert_nothing_stored(db, purchase_id)

    async def test_a_purchase_within_the_window_is_accepted(
        self, pos: Pos, customer_id: str
    ) -> None:
        recent = iso(datetime.now(UTC) - timedelta(days=29))
        response = await pos.purchase(customer_id, unique("buy"), occurred_at=recent)
        assert response.status_code == 202, response.text

    async def test_a_refund_reported_too_late_is_refused(self, pos: Pos, customer_id: str) -> None:
        purchase_id = unique("buy")
        assert (await pos.purchase(customer_id, purchase_id)).status_code == 202
        late = iso(datetime.now(UTC) - timedelta(days=31))
        response = await pos.refund(purchase_id, unique("ref"), "1.00", occurred_at=late)
        assert assert_problem(response, 422)["type"] == "urn:fedelta:problem:reported-too-late"

    @pytest.mark.parametrize(
        "occurred_at",
        [
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "1700000000",
            "2026-11-22",
        ],
    )
    async def test_an_impossible_time_is_a_422_on_purchases_and_refunds(
        self, pos: Pos, customer_id: str, occurred_at: str
    ) -> None:
        purchase = await pos.purchase(customer_id, unique("buy"), occurred_at=occurred_at)
        assert_problem(purchase, 422)
        refund = await pos.refund(unique("buy"), unique("ref"), "1.00", occurred_at=occurred_at)
        assert_problem(refund, 422)

    async def test_a_time_as_a_json_number_is_refused(self, pos: Pos, customer_id: str) -> None:
        response = await pos.purchase(customer_id, unique("buy"), occurred_at=1700000000)
        assert_problem(response, 422)


class TestAmounts:
    @pytest.mark.parametrize(
        "total", ["999999999999.99", "100000.01", "\u0663", "1_000", " 5 ", "1e2", 49.99, 5]
    )
    async def test_an_amount_out_of_bounds_or_form_is_refused(
        self, pos: Pos, customer_id: str, db: AsyncEngine, total: Any
    ) -> None:
        purchase_id = unique("buy")
        response = await pos.purchase(customer_id, purchase_id, total=total)
        assert_problem(response, 422)
        await assert_nothing_stored(db, purchase_id)

    async def test_the_largest_amount_is_accepted(self, pos: Pos, customer_id: str) -> None:
        response = await pos.purchase(customer_id, unique("buy"), total="100000.00")
        assert response.status_code == 202, response.text


class TestText:
    async def test_a_nul_in_an_email_is_a_422(self, pos: Pos) -> None:
        assert_problem(await pos.enrol(unique("cust"), email="ada\u0000@example.com"), 422)

    @pytest.mark.parametrize("field", ["sku", "category"])
    async def test_a_nul_in_an_item_is_a_422(
        self, pos: Pos, customer_id: str, db: AsyncEngine, field: str
    ) -> None:
        purchase_id = unique("buy")
        item = {"sku": "latte", "category": "coffee", "quantity": 1, "unit_price": "3.50"}
        response = await pos.purchase(
            customer_id, purchase_id, total="3.50", items=[{**item, field: "a\u0000b"}]
        )
        assert_problem(response, 422)
        await assert_nothing_stored(db, purchase_id)

    async def test_a_nul_in_a_partner_name_is_a_422(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/v1/admin/partners", json={"name": "Bad\u0000Café"}, headers=ADMIN
        )
        assert_problem(response, 422)


class TestStrictJson:
    async def test_a_duplicate_key_is_refused_and_nothing_is_stored(
        self, pos: Pos, customer_id: str, db: AsyncEngine
    ) -> None:
        purchase_id = unique("buy")
        raw = (
            f'{{"purchase_id": "{purchase_id}", "customer_id": "{customer_id}", '
            f'"occurred_at": "{iso(datetime.now(UTC))}", "currency": "EUR", '
            '"total": "1.00", "total": "99999.00"}'
        ).encode()
        response = await pos.send("POST", "/v1/purchases", raw=raw)
        problem = assert_problem(response, 422)
        assert "'total' appears more than once" in problem["detail"]
        await assert_nothing_stored(db, purchase_id)

    async def test_nan_is_refused(self, pos: Pos, customer_id: str) -> None:
        raw = b'{"refund_id": "r-1", "amount": NaN, "occurred_at": "2026-11-22T10:15:00Z"}'
        assert_problem(await pos.send("POST", "/v1/purchases/p-1/refunds", raw=raw), 422)


class TestBodyLimit:
    async def test_an_unauthenticated_100_mb_post_is_refused_before_it_is_read(
        self, client: httpx.AsyncClient
    ) -> None:
        sent = 0

        async def hundred_megabytes() -> AsyncIterator[bytes]:
            nonlocal sent
            for _ in range(1600):
                sent += 1
                yield b"x" * 65536

        response = await client.post(
            "/v1/purchases",
            content=hundred_megabytes(),
            headers={"Content-Length": str(1600 * 65536), "Content-Type": "application/json"},
        )
        problem = assert_problem(response, 413)
        assert problem["type"] == "urn:fedelta:problem:payload-too-large"
        assert sent <= 1  # not read: at most what the client had put on the wire at once

    async def test_a_chunked_body_is_cut_off_at_the_limit(self, pos: Pos) -> None:
        sent = 0

        async def endless() -> AsyncIterator[bytes]:
            nonlocal sent
            for _ in range(1600):
                sent += 1
                yield b" " * 16384

        response = await pos.client.post(
            "/v1/purchases", content=endless(), headers={"Content-Type": "application/json"}
        )
        assert_problem(response, 413)
        assert sent <= 6  # 64 KB is four chunks and a bit

    async def test_a_body_under_the_limit_is_not_affected(self, pos: Pos, customer_id: str) -> None:
        items = [
            {"sku": f"sku-{n}", "quantity": 1, "unit_price": "1.00", "category": "c" * 64}
            for n in range(200)
        ]
        body = json.dumps({"items": items}).encode()
        assert 16384 < len(body) < 65536
        response = await pos.purchase(customer_id, unique("buy"), total="200.00", items=items)
        assert response.status_code == 202, response.text


class TestOpenApi:
    async def test_ingest_documents_security_problems_and_typed_values(
        self, client: httpx.AsyncClient
    ) -> None:
        document = (await client.get("/openapi.json")).json()
        schemes = document["components"]["securitySchemes"]
        assert schemes["partnerSignature"]["name"] == "Fedelta-Signature"
        report = document["paths"]["/v1/purchases"]["post"]
        assert report["security"] == [{"partnerApiKey": [], "partnerSignature": []}]
        for status in ("400", "401", "403", "409", "413", "422"):
            assert "application/problem+json" in report["responses"][status]["content"], status
        purchase = document["components"]["schemas"]["PurchaseIn"]["properties"]
        assert purchase["total"]["type"] == "string"
        assert purchase["total"]["pattern"] == r"^[0-9]{1,6}(\.[0-9]{1,2})?$"
        assert purchase["occurred_at"]["format"] == "date-time"
        assert purchase["purchase_id"]["pattern"].startswith("^[A-Za-z0-9]")
        admin = document["paths"]["/v1/admin/partners"]["post"]
        assert admin["security"] == [{"serviceToken": []}]


@pytest.fixture(scope="module")
async def points(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    stack.migrate("points")
    async with running(create_points_app, settings_for(PointsSettings, stack, "points")) as (
        _,
        client,
    ):
        yield client


class TestPoints:
    @pytest.mark.parametrize("cursor", ["9223372036854775808", "9999999999999999999"])
    async def test_a_ledger_cursor_past_int64_is_a_422(
        self, points: httpx.AsyncClient, cursor: str
    ) -> None:
        response = await points.get(
            "/v1/customers/c-1/ledger", params={"cursor": cursor}, headers=READER
        )
        assert_problem(response, 422)

    async def test_a_customer_id_with_a_nul_is_a_422(self, points: httpx.AsyncClient) -> None:
        response = await points.get("/v1/customers/c%00/balance", headers=READER)
        assert_problem(response, 422)
