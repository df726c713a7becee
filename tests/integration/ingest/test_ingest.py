"""Ingest against the real PostgreSQL and Kafka: what a POS is told, stored and published."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.adapters import tables
from services.ingest.adapters.repositories.partner_directory import PartnerDirectory
from services.ingest.api.app import create_app
from services.ingest.api.schemas import AcceptedOut
from services.ingest.domain.model import UnknownCustomer, hash_api_key
from services.ingest.settings import IngestSettings
from services.ingest.usecases.purchase_groups import PurchaseGroups
from shared.clock import FixedClock, SystemClock
from shared.messaging import events, topics
from shared.storage.db import create_engine
from shared.web.problems import Problem
from tests.integration.ingest.support import (
    PROBLEM_JSON,
    Pos,
    assert_problem,
    count_rows,
    iso,
    published,
    published_until,
    unique,
)
from tests.support.fakes.ingest import purchase_call
from tests.support.kafka import events_for
from tests.support.services import ADMIN, running, settings_for
from tests.support.stack import REPO, Stack

pytestmark = pytest.mark.integration


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
        assert event.source == f"urn:fedelta:ingest:partner:{pos.partner_id}"
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
            version=2,
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
            total="49.99",
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
        occurred_at = iso(datetime.now(UTC) - timedelta(minutes=3))
        first = await pos.purchase(customer_id, purchase_id, occurred_at=occurred_at)
        # The same purchase retried: written differently, meaning the same thing.
        retry = await pos.purchase(
            customer_id, purchase_id, occurred_at=occurred_at, total="49.99", store_id=None
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
            ({"occurred_at": iso(datetime.now(UTC) + timedelta(minutes=10))}, "future"),
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
        body = {**json.loads(first.request.content), "amount": "5"}  # the same amount
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
            "occurred_at": iso(datetime.now(UTC)),
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


async def test_a_partner_onboarded_is_announced_on_the_partners_topic(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    """Consumers refuse events of partners they were never told of (issue 19): ingest
    announces each partner it makes, keyed by the partner, from the same transaction."""
    partner_id = unique("partner")
    made = await client.post(
        "/v1/admin/partners", json={"name": "Announced", "partner_id": partner_id}, headers=ADMIN
    )
    assert made.status_code == 201, made.text
    [announced] = await published(stack, topics.PARTNERS, partner_id, 1)
    assert announced.type == events.PARTNER_PROVISIONED
    assert announced.source == "urn:fedelta:ingest"
    assert announced.data["partner_id"] == partner_id
    # A partner refused (it exists already) is not announced again.
    again = await client.post(
        "/v1/admin/partners", json={"name": "Announced", "partner_id": partner_id}, headers=ADMIN
    )
    assert again.status_code == 409
    assert len(await events_for(stack.kafka, topics.PARTNERS, partner_id)) == 1


class TestProvisioningCli:
    @pytest.fixture
    def provision(self, stack: Stack) -> Iterator[Any]:
        env = {**stack.script_env(), **stack.service_env("ingest", port=18000)}

        def run(*args: str, credentials: dict[str, str]) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "services.ingest", "provision-partner", *args],
                cwd=REPO,
                env={**env, **credentials},
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )

        yield run

    async def test_provisioning_twice_leaves_a_partner_that_can_call(
        self, provision: Any, client: httpx.AsyncClient, db: AsyncEngine, stack: Stack
    ) -> None:
        partner_id, api_key, secret = unique("demo"), uuid.uuid4().hex * 2, uuid.uuid4().hex
        args = ("--partner-id", partner_id, "--name", "Demo Café")
        credentials = {"FEDELTA_PARTNER_KEY": api_key, "FEDELTA_PARTNER_SECRET": secret}
        for _ in range(2):
            result = provision(*args, credentials=credentials)
            assert result.returncode == 0, result.stderr
            assert api_key not in result.stdout + result.stderr
        assert (
            await count_rows(db, tables.partners, tables.partners.c.partner_id == partner_id) == 1
        )

        demo = Pos(client, partner_id, api_key, secret)
        assert (await demo.enrol(unique("cust"))).status_code == 202
        # Announced each time (the topic is compacted: the last one stays).
        announced = await published(stack, topics.PARTNERS, partner_id, 2)
        assert {e.type for e in announced} == {events.PARTNER_PROVISIONED}
        assert {e.data["partner_id"] for e in announced} == {partner_id}


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
                "occurred_at": iso(datetime.now(UTC)),
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
                "occurred_at": iso(datetime.now(UTC)),
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
        # Any partner of the coalition reports purchases for any member (contract §4).
        body = {
            "purchase_id": unique("p"),
            "customer_id": customer_id,
            "occurred_at": iso(datetime.now(UTC) - timedelta(minutes=1)),
            "currency": "EUR",
            "total": "12.00",
        }
        mine = await pos.send("POST", "/v1/purchases", body, headers=key)
        theirs = await other.send("POST", "/v1/purchases", body, headers=key)
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


class TestGroupCommit:
    """Concurrent purchases share a transaction, and each caller gets its own answer."""

    @pytest.fixture
    async def commits(self, stack: Stack) -> AsyncIterator[tuple[PurchaseGroups, list[int]]]:
        engine = create_engine(stack.database_url("ingest"), pool_size=4)
        counted: list[int] = []
        sa.event.listen(engine.sync_engine, "commit", lambda _: counted.append(1))
        yield (
            PurchaseGroups(engine, SystemClock(), max_size=64, after_commit=lambda: None),
            counted,
        )
        await engine.dispose()

    async def test_purchases_arriving_together_are_committed_together_and_all_stored(
        self,
        commits: tuple[PurchaseGroups, list[int]],
        pos: Pos,
        customer_id: str,
        db: AsyncEngine,
    ) -> None:
        groups, counted = commits
        calls = [purchase_call(pos.partner_id, customer_id, unique("buy")) for _ in range(20)]
        answers = await asyncio.gather(*(groups.submit(call) for call in calls))

        assert [a.event_id for a in answers if isinstance(a, AcceptedOut)] == [
            call.event.id for call in calls
        ]
        assert len(counted) == 1
        ids = [call.purchase.purchase_id for call in calls]
        assert await count_rows(db, tables.purchases, tables.purchases.c.purchase_id.in_(ids)) == 20
        event_ids = [call.event.id for call in calls]
        published_or_pending = await count_rows(
            db, tables.outbox, tables.outbox.c.event_id.in_(event_ids)
        )
        # The relay of the running service may already have published (and deleted) some.
        assert published_or_pending <= 20

    async def test_one_purchase_id_twice_in_a_group_is_decided_as_if_one_came_after_the_other(
        self,
        commits: tuple[PurchaseGroups, list[int]],
        pos: Pos,
        customer_id: str,
        db: AsyncEngine,
    ) -> None:
        groups, counted = commits
        purchase_id = unique("buy")
        first = purchase_call(pos.partner_id, customer_id, purchase_id)
        retry = purchase_call(pos.partner_id, customer_id, purchase_id)
        other = purchase_call(pos.partner_id, customer_id, purchase_id, total="99.00")
        outcomes = await asyncio.gather(
            *(groups.submit(call) for call in (first, retry, other)), return_exceptions=True
        )

        assert len(counted) == 1
        accepted, retried, conflict = outcomes
        assert isinstance(accepted, AcceptedOut) and accepted.event_id == first.event.id
        assert isinstance(retried, AcceptedOut) and retried.event_id == first.event.id
        assert isinstance(conflict, Problem) and conflict.status == 409
        purchases = tables.purchases.c
        assert await count_rows(db, tables.purchases, purchases.purchase_id == purchase_id) == 1
        assert await count_rows(db, tables.outbox, tables.outbox.c.event_id == retry.event.id) == 0

    async def test_one_idempotency_key_twice_in_a_group_replays_or_conflicts(
        self, commits: tuple[PurchaseGroups, list[int]], pos: Pos, customer_id: str
    ) -> None:
        groups, counted = commits
        key = unique("key")
        first = purchase_call(pos.partner_id, customer_id, unique("buy"), key=key)
        again = purchase_call(
            pos.partner_id, first.purchase.customer_id, first.purchase.purchase_id, key=key
        )
        reused = purchase_call(pos.partner_id, customer_id, unique("buy"), key=key)
        outcomes = await asyncio.gather(
            *(groups.submit(call) for call in (first, again, reused)), return_exceptions=True
        )

        assert len(counted) == 1
        accepted, replayed, conflict = outcomes
        assert isinstance(accepted, AcceptedOut)
        assert isinstance(replayed, JSONResponse)
        assert replayed.headers["idempotent-replayed"] == "true"
        assert json.loads(bytes(replayed.body)) == {"event_id": accepted.event_id}
        assert isinstance(conflict, Problem) and conflict.slug == "idempotency-key-reused"

    async def test_a_refused_purchase_does_not_stop_the_rest_of_its_group(
        self, commits: tuple[PurchaseGroups, list[int]], pos: Pos, customer_id: str
    ) -> None:
        groups, _ = commits
        good = purchase_call(pos.partner_id, customer_id, unique("buy"))
        stranger = purchase_call(pos.partner_id, unique("nobody"), unique("buy"))
        outcomes = await asyncio.gather(
            groups.submit(good), groups.submit(stranger), return_exceptions=True
        )
        assert isinstance(outcomes[0], AcceptedOut)
        assert isinstance(outcomes[1], UnknownCustomer)

    async def test_many_concurrent_calls_over_http_each_get_their_own_answer(
        self, pos: Pos, customer_id: str, db: AsyncEngine
    ) -> None:
        ids = [unique("buy") for _ in range(30)]
        strangers = [unique("nobody") for _ in range(5)]
        responses = await asyncio.gather(
            *(pos.purchase(customer_id, purchase_id) for purchase_id in ids),
            *(pos.purchase(stranger, unique("buy")) for stranger in strangers),
        )
        assert [r.status_code for r in responses] == [202] * 30 + [422] * 5
        assert len({r.json()["event_id"] for r in responses[:30]}) == 30
        assert await count_rows(db, tables.purchases, tables.purchases.c.purchase_id.in_(ids)) == 30


class TestPartnerCache:
    async def test_a_partner_is_asked_for_once_per_ttl_so_a_revocation_takes_that_long(
        self, pos: Pos, db: AsyncEngine, stack: Stack
    ) -> None:
        engine = create_engine(stack.database_url("ingest"), pool_size=2)
        clock = FixedClock(datetime.now(UTC))
        directory = PartnerDirectory(engine, clock, timedelta(seconds=5))
        key_hash = hash_api_key(pos.api_key)
        try:
            partner = await directory.by_key_hash(key_hash)
            assert partner is not None and partner.active
            await self._set_active(db, pos.partner_id, active=False)

            clock.advance(timedelta(seconds=4))
            cached = await directory.by_key_hash(key_hash)
            assert cached is not None and cached.active
            clock.advance(timedelta(seconds=2))
            fresh = await directory.by_key_hash(key_hash)
            assert fresh is not None and not fresh.active
        finally:
            await self._set_active(db, pos.partner_id, active=True)
            await engine.dispose()

    async def test_an_unknown_key_is_not_remembered(self, stack: Stack, db: AsyncEngine) -> None:
        engine = create_engine(stack.database_url("ingest"), pool_size=2)
        directory = PartnerDirectory(engine, SystemClock(), timedelta(minutes=5))
        api_key = uuid.uuid4().hex
        partner_id = unique("late")
        try:
            assert await directory.by_key_hash(hash_api_key(api_key)) is None
            async with db.begin() as conn:
                await conn.execute(
                    tables.partners.insert().values(
                        partner_id=partner_id,
                        name="Late café",
                        api_key_hash=hash_api_key(api_key),
                        signing_secret=stack.sealed_as_stored(
                            "ingest", partner_id, uuid.uuid4().hex
                        ),
                        created_at=datetime.now(UTC),
                    )
                )
            found = await directory.by_key_hash(hash_api_key(api_key))
            assert found is not None and found.partner_id == partner_id
        finally:
            await engine.dispose()

    @staticmethod
    async def _set_active(db: AsyncEngine, partner_id: str, *, active: bool) -> None:
        async with db.begin() as conn:
            await conn.execute(
                tables.partners.update()
                .where(tables.partners.c.partner_id == partner_id)
                .values(active=active)
            )


class TestDatabaseTrouble:
    async def test_connections_dropped_by_postgresql_are_retried_not_answered_with_an_error(
        self, pos: Pos, customer_id: str, db: AsyncEngine
    ) -> None:
        # Warm the service's pool with several connections, then have PostgreSQL drop them
        # all, as a restart would: the next calls meet dead connections first.
        warm = await asyncio.gather(*(pos.purchase(customer_id, unique("buy")) for _ in range(8)))
        assert {r.status_code for r in warm} == {202}
        async with db.connect() as conn:
            dropped = await conn.scalar(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE usename = current_user AND pid <> pg_backend_pid()"
                )
            )
        assert dropped

        purchase = await pos.purchase(customer_id, unique("buy"))
        assert purchase.status_code == 202, purchase.text
        enrolment = await pos.enrol(unique("cust"))
        assert enrolment.status_code == 202, enrolment.text

    async def test_while_the_database_is_away_a_pos_is_told_503_with_retry_after(
        self, stack: Stack, pos: Pos, customer_id: str
    ) -> None:
        away = settings_for(
            IngestSettings,
            stack,
            "ingest",
            database_url="postgresql+asyncpg://ingest:ingest@127.0.0.1:9/fedelta_ingest",
            run_workers="false",
        )
        async with running(create_app, away) as (_, isolated_client):
            isolated = Pos(isolated_client, pos.partner_id, pos.api_key, pos.signing_secret)
            responses = [
                await isolated.purchase(customer_id, unique("buy")),
                await isolated.enrol(unique("cust")),
            ]
        for response in responses:
            problem = assert_problem(response, 503)
            assert problem["type"] == "urn:fedelta:problem:database-unavailable"
            assert response.headers["retry-after"].isdigit()
