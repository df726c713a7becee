"""Ingest against the real PostgreSQL and Kafka: what a POS is told, stored and published."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.ingest.adapters import tables
from services.ingest.api.app import create_app
from services.ingest.settings import IngestSettings
from shared import events, topics
from shared.auth import SIGNATURE_HEADER, sign
from shared.events import CloudEvent
from tests.support.kafka import events_for
from tests.support.polling import eventually
from tests.support.services import ADMIN, running, settings_for
from tests.support.stack import REPO, Stack

pytestmark = pytest.mark.integration

PROBLEM_JSON = "application/problem+json"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class Pos:
    """A partner's point-of-sale: signs every call it makes, as a real one must."""

    client: httpx.AsyncClient
    partner_id: str
    api_key: str
    signing_secret: str

    async def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        signed_body: bytes | None = None,
        timestamp: int | None = None,
        api_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        content = raw if raw is not None else json.dumps(body).encode()
        signature = sign(
            self.signing_secret,
            int(time.time()) if timestamp is None else timestamp,
            content if signed_body is None else signed_body,
        )
        return await self.client.request(
            method,
            path,
            content=content,
            headers={
                "Authorization": f"Bearer {api_key or self.api_key}",
                SIGNATURE_HEADER: signature,
                "Content-Type": "application/json",
                **(headers or {}),
            },
        )

    async def enrol(self, customer_id: str, **fields: Any) -> httpx.Response:
        return await self.send("POST", "/v1/customers", {"customer_id": customer_id, **fields})

    async def purchase(self, customer_id: str, purchase_id: str, **fields: Any) -> httpx.Response:
        body = {
            "purchase_id": purchase_id,
            "customer_id": customer_id,
            "occurred_at": _iso(datetime.now(UTC) - timedelta(minutes=1)),
            "currency": "EUR",
            "total": "49.99",
            **fields,
        }
        return await self.send("POST", "/v1/purchases", body)

    async def refund(
        self, purchase_id: str, refund_id: str, amount: str, **fields: Any
    ) -> httpx.Response:
        body = {
            "refund_id": refund_id,
            "amount": amount,
            "occurred_at": _iso(datetime.now(UTC)),
            **fields,
        }
        return await self.send("POST", f"/v1/purchases/{purchase_id}/refunds", body)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def settings(stack: Stack) -> IngestSettings:
    stack.migrate("ingest")
    return settings_for(IngestSettings, stack, "ingest")


@pytest.fixture(scope="module")
async def client(settings: IngestSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app, settings) as (_, client):
        yield client


@pytest.fixture(scope="module")
async def db(stack: Stack) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(stack.database_url("ingest"))
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def pos(client: httpx.AsyncClient) -> Pos:
    partner_id = unique("partner")
    response = await client.post(
        "/v1/admin/partners", json={"name": "Café Test", "partner_id": partner_id}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    created = response.json()
    assert created["partner_id"] == partner_id
    return Pos(client, partner_id, created["api_key"], created["signing_secret"])


@pytest.fixture
async def customer_id(pos: Pos) -> str:
    customer_id = unique("cust")
    response = await pos.enrol(customer_id, email="ada@example.com", locale="fi")
    assert response.status_code == 202, response.text
    return customer_id


async def published(stack: Stack, topic: str, customer_id: str, count: int) -> list[CloudEvent]:
    """The customer's events on the topic, once there are at least `count` of them."""

    async def probe() -> list[CloudEvent] | None:
        found = await events_for(stack.kafka_bootstrap_servers, topic, subject=customer_id)
        return found if len(found) >= count else None

    return await eventually(probe, what=f"{count} event(s) for {customer_id} on {topic}")


async def published_until(
    stack: Stack, topic: str, customer_id: str, marker_event_id: str
) -> list[CloudEvent]:
    """The customer's events up to and with the marker. One customer's events share a
    partition, so whatever an earlier call published would be here before the marker."""

    async def probe() -> list[CloudEvent] | None:
        found = await events_for(stack.kafka_bootstrap_servers, topic, subject=customer_id)
        return found if any(event.id == marker_event_id for event in found) else None

    return await eventually(probe, what=f"event {marker_event_id} on {topic}")


async def count_rows(db: AsyncEngine, table: sa.Table, *conditions: Any) -> int:
    async with db.connect() as conn:
        return int(
            await conn.scalar(sa.select(sa.func.count()).select_from(table).where(*conditions)) or 0
        )


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["detail"]
    return problem


class TestCustomers:
    async def test_an_enrolment_is_accepted_and_published_on_the_customers_topic(
        self, stack: Stack, pos: Pos
    ) -> None:
        customer_id = unique("cust")
        response = await pos.enrol(
            customer_id,
            email="ada@example.com",
            phone="+358401234567",
            locale="fi",
            time_zone="Europe/Helsinki",
            consent={"email": True, "sms": False},
        )
        assert response.status_code == 202, response.text
        event_id = response.json()["event_id"]

        [event] = await published(stack, topics.CUSTOMERS, customer_id, 1)
        assert event.id == event_id
        assert event.type == events.CUSTOMER_ENROLLED
        assert event.source == f"ingest/{pos.partner_id}"
        enrolled = events.CustomerEnrolled.model_validate(event.data)
        assert enrolled.partner_id == pos.partner_id
        assert enrolled.email == "ada@example.com"
        assert enrolled.time_zone == "Europe/Helsinki"
        assert enrolled.consent == events.Consent(email=True, sms=False)

    async def test_the_same_enrolment_again_gets_the_same_answer_and_another_one_a_409(
        self, pos: Pos, db: AsyncEngine
    ) -> None:
        customer_id = unique("cust")
        first = await pos.enrol(customer_id, locale="it")
        again = await pos.enrol(customer_id, locale="it")
        assert first.status_code == again.status_code == 202
        assert again.json() == first.json()

        other = await pos.enrol(customer_id, locale="pl")
        assert "PATCH" in assert_problem(other, 409)["detail"]
        assert (
            await count_rows(
                db,
                tables.customers,
                tables.customers.c.locale == "pl",
                tables.customers.c.customer_id == customer_id,
            )
            == 0
        )

    async def test_a_patch_publishes_the_full_current_profile(self, stack: Stack, pos: Pos) -> None:
        customer_id = unique("cust")
        enrolled = await pos.enrol(
            customer_id,
            email="ada@example.com",
            phone="+358401234567",
            locale="fi",
            consent={"email": True, "sms": False},
        )
        assert enrolled.status_code == 202

        response = await pos.send(
            "PATCH",
            f"/v1/customers/{customer_id}",
            {"locale": "it", "phone": None, "consent": {"sms": True}},
        )
        assert response.status_code == 202, response.text

        first, update = await published(stack, topics.CUSTOMERS, customer_id, 2)
        assert update.id == response.json()["event_id"]
        assert update.type == events.CUSTOMER_UPDATED
        profile = events.CustomerUpdated.model_validate(update.data)
        assert profile == events.CustomerUpdated(
            customer_id=customer_id,
            partner_id=pos.partner_id,
            enrolled_at=events.CustomerEnrolled.model_validate(first.data).enrolled_at,
            locale="it",
            time_zone="UTC",
            email="ada@example.com",
            phone=None,
            consent=events.Consent(email=True, sms=True),
        )

    async def test_patching_an_unknown_customer_is_a_404(self, pos: Pos) -> None:
        response = await pos.send("PATCH", f"/v1/customers/{unique('nobody')}", {"locale": "it"})
        assert assert_problem(response, 404)["type"] == "urn:fedelta:problem:unknown-customer"


class TestPurchases:
    async def test_a_purchase_is_published_with_its_total_as_a_decimal_string(
        self, stack: Stack, pos: Pos, customer_id: str
    ) -> None:
        purchase_id = unique("buy")
        response = await pos.purchase(
            customer_id,
            purchase_id,
            total=49.99,
            store_id="store-1",
            items=[
                {"sku": "latte", "category": "coffee", "quantity": 2, "unit_price": "3.50"},
                {"sku": "bagel", "category": "food", "quantity": 1, "unit_price": "42.99"},
            ],
        )
        assert response.status_code == 202, response.text

        [event] = await published(stack, topics.PURCHASES, customer_id, 1)
        assert event.id == response.json()["event_id"]
        assert event.type == events.PURCHASE_COMPLETED
        assert event.data["total"] == "49.99"
        assert event.data["items"][0]["unit_price"] == "3.50"
        purchase = events.PurchaseCompleted.model_validate(event.data)
        assert purchase.total == Decimal("49.99")
        assert (purchase.partner_id, purchase.store_id) == (pos.partner_id, "store-1")

    async def test_the_same_purchase_twice_gets_the_same_event_id_and_one_event(
        self, stack: Stack, pos: Pos, customer_id: str
    ) -> None:
        purchase_id = unique("buy")
        occurred_at = _iso(datetime.now(UTC) - timedelta(minutes=3))
        first = await pos.purchase(customer_id, purchase_id, occurred_at=occurred_at)
        # The same purchase retried: written differently, meaning the same thing.
        retry = await pos.purchase(
            customer_id, purchase_id, occurred_at=occurred_at, total="49.990", store_id=None
        )
        assert first.status_code == retry.status_code == 202, retry.text
        assert retry.json()["event_id"] == first.json()["event_id"]

        marker = await pos.purchase(customer_id, unique("buy"))
        found = await published_until(
            stack, topics.PURCHASES, customer_id, marker.json()["event_id"]
        )
        assert [e.id for e in found] == [first.json()["event_id"], marker.json()["event_id"]]

    async def test_another_purchase_under_the_same_id_is_a_409(
        self, pos: Pos, customer_id: str, db: AsyncEngine
    ) -> None:
        purchase_id = unique("buy")
        assert (await pos.purchase(customer_id, purchase_id)).status_code == 202
        response = await pos.purchase(customer_id, purchase_id, total="10.00")
        problem = assert_problem(response, 409)
        assert problem["type"] == "urn:fedelta:problem:idempotency-conflict"
        purchases = tables.purchases.c
        assert await count_rows(db, tables.purchases, purchases.purchase_id == purchase_id) == 1

    async def test_a_purchase_of_an_unknown_customer_is_refused(self, pos: Pos) -> None:
        response = await pos.purchase(unique("nobody"), unique("buy"))
        assert assert_problem(response, 422)["type"] == "urn:fedelta:problem:unknown-customer"

    @pytest.mark.parametrize(
        ("fields", "expected"),
        [
            ({"currency": "USD"}, "program currency is EUR"),
            ({"occurred_at": "2026-11-22T10:15:00"}, "timezone"),
            ({"occurred_at": _iso(datetime.now(UTC) + timedelta(minutes=10))}, "future"),
            ({"total": "0.00"}, "greater than 0"),
            (
                {"items": [{"sku": "free", "quantity": 1, "unit_price": "0"}]},
                "worth nothing",
            ),
        ],
    )
    async def test_a_refused_purchase_is_neither_stored_nor_published(
        self,
        stack: Stack,
        pos: Pos,
        customer_id: str,
        db: AsyncEngine,
        fields: dict[str, Any],
        expected: str,
    ) -> None:
        purchase_id = unique("buy")
        problem = assert_problem(await pos.purchase(customer_id, purchase_id, **fields), 422)
        assert expected in problem["detail"]

        purchases = tables.purchases.c
        assert await count_rows(db, tables.purchases, purchases.purchase_id == purchase_id) == 0
        await self._assert_nothing_published(stack, pos, customer_id)

    async def test_malformed_json_is_a_problem_and_changes_nothing(
        self, stack: Stack, pos: Pos, customer_id: str, db: AsyncEngine
    ) -> None:
        purchase_id = unique("buy")
        raw = f'{{"purchase_id": "{purchase_id}", "customer_id": "{customer_id}", '.encode()
        response = await pos.send("POST", "/v1/purchases", raw=raw)
        assert assert_problem(response, 422)["title"] == "Invalid request"

        purchases = tables.purchases.c
        assert await count_rows(db, tables.purchases, purchases.purchase_id == purchase_id) == 0
        await self._assert_nothing_published(stack, pos, customer_id)

    @staticmethod
    async def _assert_nothing_published(stack: Stack, pos: Pos, customer_id: str) -> None:
        marker = await pos.purchase(customer_id, unique("buy"))
        assert marker.status_code == 202
        found = await published_until(
            stack, topics.PURCHASES, customer_id, marker.json()["event_id"]
        )
        assert [e.id for e in found] == [marker.json()["event_id"]]

    async def test_the_pos_is_answered_while_kafka_is_away_and_the_relay_publishes_later(
        self, stack: Stack, pos: Pos, customer_id: str, db: AsyncEngine
    ) -> None:
        # An instance with an unreachable broker and no relay of its own: the call only
        # writes the database, and the relay of the running service publishes it afterwards.
        cut_off = settings_for(
            IngestSettings,
            stack,
            "ingest",
            kafka_bootstrap_servers="127.0.0.1:9",
            run_workers="false",
        )
        async with running(create_app, cut_off) as (_, isolated_client):
            isolated = Pos(isolated_client, pos.partner_id, pos.api_key, pos.signing_secret)
            response = await isolated.purchase(customer_id, unique("buy"))
        assert response.status_code == 202, response.text
        [event] = await published(stack, topics.PURCHASES, customer_id, 1)
        assert event.id == response.json()["event_id"]


class TestRefunds:
    async def test_refunds_are_published_until_the_total_is_refunded(
        self, stack: Stack, pos: Pos, customer_id: str
    ) -> None:
        purchase_id = unique("buy")
        assert (await pos.purchase(customer_id, purchase_id, total="10.00")).status_code == 202

        first = await pos.refund(purchase_id, unique("ref"), "6.00")
        assert first.status_code == 202, first.text
        too_much = await pos.refund(purchase_id, unique("ref"), "4.01")
        problem = assert_problem(too_much, 422)
        assert problem["remaining"] == "4.00"
        assert "4.00" in problem["detail"]
        rest = await pos.refund(purchase_id, unique("ref"), "4.00")
        assert rest.status_code == 202, rest.text

        _, *refunds = await published(stack, topics.PURCHASES, customer_id, 3)
        assert [e.id for e in refunds] == [first.json()["event_id"], rest.json()["event_id"]]
        refunded = events.PurchaseRefunded.model_validate(refunds[0].data)
        assert (refunded.purchase_id, refunded.customer_id) == (purchase_id, customer_id)
        assert refunds[0].data["amount"] == "6.00"

    async def test_the_same_refund_again_gets_the_same_answer_and_another_one_a_409(
        self, pos: Pos, customer_id: str
    ) -> None:
        purchase_id, refund_id = unique("buy"), unique("ref")
        assert (await pos.purchase(customer_id, purchase_id)).status_code == 202
        first = await pos.refund(purchase_id, refund_id, "5.00")
        body = {**json.loads(first.request.content), "amount": 5}  # the same amount
        retry = await pos.send("POST", f"/v1/purchases/{purchase_id}/refunds", body)
        assert first.status_code == retry.status_code == 202
        assert retry.json() == first.json()
        other = await pos.refund(purchase_id, refund_id, "6.00")
        assert_problem(other, 409)

    async def test_a_refund_of_an_unknown_purchase_is_refused(self, pos: Pos) -> None:
        response = await pos.refund(unique("never-sold"), unique("ref"), "1.00")
        assert assert_problem(response, 422)["type"] == "urn:fedelta:problem:unknown-purchase"

    async def test_concurrent_refunds_never_refund_more_than_the_total(
        self, pos: Pos, customer_id: str, db: AsyncEngine
    ) -> None:
        purchase_id = unique("buy")
        assert (await pos.purchase(customer_id, purchase_id, total="10.00")).status_code == 202

        responses = await asyncio.gather(
            *(pos.refund(purchase_id, unique("ref"), "3.00") for _ in range(8))
        )
        assert sorted(r.status_code for r in responses) == [202] * 3 + [422] * 5
        async with db.connect() as conn:
            refunded = await conn.scalar(
                sa.select(tables.purchases.c.refunded).where(
                    tables.purchases.c.purchase_id == purchase_id
                )
            )
        assert refunded == Decimal("9.00")


class TestAuthentication:
    async def test_a_tampered_body_is_refused_and_changes_nothing(
        self, pos: Pos, customer_id: str, db: AsyncEngine
    ) -> None:
        purchase_id = unique("buy")
        body = {
            "purchase_id": purchase_id,
            "customer_id": customer_id,
            "occurred_at": _iso(datetime.now(UTC)),
            "currency": "EUR",
            "total": "9.99",
        }
        signed = json.dumps(body).encode()
        sent = json.dumps({**body, "total": "999.99"}).encode()
        response = await pos.send("POST", "/v1/purchases", raw=sent, signed_body=signed)
        assert "does not match" in assert_problem(response, 401)["detail"]
        purchases = tables.purchases.c
        assert await count_rows(db, tables.purchases, purchases.purchase_id == purchase_id) == 0

    async def test_a_stale_signature_is_refused(self, pos: Pos) -> None:
        response = await pos.send(
            "POST",
            "/v1/customers",
            {"customer_id": unique("cust")},
            timestamp=int(time.time()) - 301,
        )
        assert "at most 300s" in assert_problem(response, 401)["detail"]

    async def test_an_unknown_api_key_is_refused(self, pos: Pos) -> None:
        response = await pos.send(
            "POST", "/v1/customers", {"customer_id": unique("cust")}, api_key="not-a-key"
        )
        assert "API key" in assert_problem(response, 401)["detail"]

    async def test_authentication_is_checked_before_the_content(self, pos: Pos) -> None:
        response = await pos.send(
            "POST", "/v1/purchases", {"purchase_id": "incomplete"}, api_key="not-a-key"
        )
        assert_problem(response, 401)

    async def test_a_call_without_a_signature_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/customers", json={"customer_id": unique("cust")})
        assert_problem(response, 401)

    async def test_onboarding_a_partner_needs_the_admin_token(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post("/v1/admin/partners", json={"name": "Nope"})
        assert_problem(response, 401)


class TestProvisioningCli:
    @pytest.fixture
    def provision(self, stack: Stack) -> Iterator[Any]:
        env = {**stack.script_env(), **stack.service_env("ingest", port=18000)}

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "services.ingest", "provision-partner", *args],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )

        yield run

    async def test_provisioning_twice_leaves_a_partner_that_can_call(
        self, provision: Any, client: httpx.AsyncClient, db: AsyncEngine
    ) -> None:
        partner_id, api_key, secret = unique("demo"), uuid.uuid4().hex * 2, uuid.uuid4().hex
        args = (
            "--partner-id",
            partner_id,
            "--name",
            "Demo Café",
            "--api-key",
            api_key,
            "--signing-secret",
            secret,
        )
        for _ in range(2):
            result = provision(*args)
            assert result.returncode == 0, result.stderr
            assert api_key not in result.stdout + result.stderr
        assert (
            await count_rows(db, tables.partners, tables.partners.c.partner_id == partner_id) == 1
        )

        demo = Pos(client, partner_id, api_key, secret)
        assert (await demo.enrol(unique("cust"))).status_code == 202


class TestIdempotencyKey:
    """Contract §4: a keyed retry gets the first answer; the key reused for another request
    is a 409; a refused call is not remembered. PATCH has no natural id, so it is the case
    where only the key stops a retry from publishing a second event."""

    @staticmethod
    def key() -> dict[str, str]:
        return {"Idempotency-Key": unique("key")}

    async def test_a_keyed_retry_gets_the_first_answer_and_publishes_once(
        self, stack: Stack, pos: Pos, customer_id: str
    ) -> None:
        key = self.key()
        path = f"/v1/customers/{customer_id}"
        first = await pos.send("PATCH", path, {"locale": "it"}, headers=key)
        again = await pos.send("PATCH", path, {"locale": "it"}, headers=key)
        assert first.status_code == again.status_code == 202, again.text
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers

        marker = await pos.send("PATCH", path, {"locale": "pl"})
        found = await published_until(
            stack, topics.CUSTOMERS, customer_id, marker.json()["event_id"]
        )
        updates = [e for e in found if e.type == events.CUSTOMER_UPDATED]
        assert [e.id for e in updates] == [first.json()["event_id"], marker.json()["event_id"]]

    async def test_the_same_key_for_another_request_is_a_409(
        self, pos: Pos, customer_id: str
    ) -> None:
        key = self.key()
        path = f"/v1/customers/{customer_id}"
        assert (await pos.send("PATCH", path, {"locale": "it"}, headers=key)).status_code == 202
        reused = await pos.send("PATCH", path, {"locale": "fi"}, headers=key)
        assert reused.status_code == 409
        assert reused.headers["content-type"] == PROBLEM_JSON
        assert reused.json()["type"] == "urn:fedelta:problem:idempotency-key-reused"

    async def test_a_refused_call_is_not_remembered(
        self, db: AsyncEngine, pos: Pos, customer_id: str
    ) -> None:
        key = self.key()
        refused = await pos.send(
            "POST",
            "/v1/purchases",
            {
                "purchase_id": unique("p"),
                "customer_id": customer_id,
                "occurred_at": _iso(datetime.now(UTC)),
                "currency": "USD",
                "total": "5.00",
            },
            headers=key,
        )
        assert refused.status_code == 422
        assert (
            await count_rows(
                db, tables.idempotency_keys, tables.idempotency_keys.c.key == key["Idempotency-Key"]
            )
            == 0
        )
        fixed = await pos.send(
            "POST",
            "/v1/purchases",
            {
                "purchase_id": unique("p"),
                "customer_id": customer_id,
                "occurred_at": _iso(datetime.now(UTC)),
                "currency": "EUR",
                "total": "5.00",
            },
            headers=key,
        )
        assert fixed.status_code == 202, fixed.text

    async def test_concurrent_retries_apply_once(
        self, stack: Stack, pos: Pos, customer_id: str
    ) -> None:
        key = self.key()
        path = f"/v1/customers/{customer_id}"
        answers = await asyncio.gather(
            *(pos.send("PATCH", path, {"phone": "+358401234567"}, headers=key) for _ in range(6))
        )
        assert {a.status_code for a in answers} == {202}
        assert len({a.json()["event_id"] for a in answers}) == 1
        marker = await pos.send("PATCH", path, {"locale": "pl"})
        found = await published_until(
            stack, topics.CUSTOMERS, customer_id, marker.json()["event_id"]
        )
        assert len([e for e in found if e.type == events.CUSTOMER_UPDATED]) == 2

    async def test_keys_belong_to_the_partner(
        self, client: httpx.AsyncClient, pos: Pos, customer_id: str
    ) -> None:
        created = (
            await client.post("/v1/admin/partners", json={"name": "Other café"}, headers=ADMIN)
        ).json()
        other = Pos(client, created["partner_id"], created["api_key"], created["signing_secret"])
        key = self.key()
        path = f"/v1/customers/{customer_id}"
        mine = await pos.send("PATCH", path, {"locale": "it"}, headers=key)
        theirs = await other.send("PATCH", path, {"locale": "fi"}, headers=key)
        assert mine.status_code == theirs.status_code == 202
        assert mine.json() != theirs.json()

    async def test_an_overlong_key_is_a_400(self, pos: Pos, customer_id: str) -> None:
        response = await pos.send(
            "PATCH",
            f"/v1/customers/{customer_id}",
            {"locale": "it"},
            headers={"Idempotency-Key": "k" * 256},
        )
        assert response.status_code == 400
        assert response.json()["type"] == "urn:fedelta:problem:invalid-idempotency-key"
