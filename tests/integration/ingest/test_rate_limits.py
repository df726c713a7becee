"""Issue 19, per-partner rate limits on the real ingest: a partner whose limit is a few calls
per second gets 429 problem+json with Retry-After past it, on the hot path of purchases and on
the documented routes alike, and nothing of a refused call is stored or published; other
partners are not limited by it; the admin partners API sets and clears a partner's limit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.adapters.tables import customers, purchases
from services.ingest.api.app import create_app
from services.ingest.settings import IngestSettings
from shared.messaging import topics
from tests.integration.ingest.support import (
    Pos,
    assert_problem,
    count_rows,
    iso,
    published_until,
    unique,
)
from tests.support.services import ADMIN, running, settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def limited(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    stack.migrate("ingest")
    # One process (its share is the whole limit) and no partner cache (a new limit applies
    # at the next call).
    settings = settings_for(IngestSettings, stack, "ingest", workers="1", partner_cache_seconds="0")
    async with running(create_app, settings) as (_, client):
        yield client


async def new_partner(client: httpx.AsyncClient, **fields: object) -> tuple[Pos, dict[str, object]]:
    created = await client.post(
        "/v1/admin/partners",
        json={"name": "Limited", "partner_id": unique("p"), **fields},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    return Pos(client, body["partner_id"], body["api_key"], body["signing_secret"]), body


async def set_limit(client: httpx.AsyncClient, partner_id: str, limit: object) -> httpx.Response:
    return await client.put(
        f"/v1/admin/partners/{partner_id}/rate-limit",
        json={"rate_limit_per_second": limit},
        headers=ADMIN,
    )


async def buy(pos: Pos, customer_id: str, purchase_id: str) -> httpx.Response:
    body = {
        "purchase_id": purchase_id,
        "customer_id": customer_id,
        "occurred_at": iso(datetime.now(UTC) - timedelta(minutes=1)),
        "currency": "EUR",
        "total": "12.50",
    }
    return await pos.send(
        "POST", "/v1/purchases", body, headers={"Idempotency-Key": uuid.uuid4().hex}
    )


def assert_rate_limited(response: httpx.Response) -> None:
    problem = assert_problem(response, 429)
    assert problem["type"] == "urn:fedelta:problem:rate-limited"
    assert int(response.headers["retry-after"]) >= 1


async def test_a_partner_past_its_limit_gets_429_and_nothing_is_published(
    stack: Stack, limited: httpx.AsyncClient, db: AsyncEngine
) -> None:
    pos, created = await new_partner(limited)
    assert created.get("rate_limit_per_second", "absent") == "absent"  # not in the credentials
    customer_id = unique("cust")
    enrolled = await pos.enrol(customer_id)
    assert enrolled.status_code == 202, enrolled.text

    answer = await set_limit(limited, pos.partner_id, 1)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rate_limit_per_second"] == 1

    ids = [unique("buy") for _ in range(6)]
    answers = dict(
        zip(ids, await asyncio.gather(*(buy(pos, customer_id, i) for i in ids)), strict=True)
    )
    accepted = [i for i, a in answers.items() if a.status_code == 202]
    refused = [i for i, a in answers.items() if a.status_code == 429]
    assert len(accepted) + len(refused) == len(ids), {i: a.text for i, a in answers.items()}
    # One second's worth at once; a slow machine may have refilled one more meanwhile.
    assert 1 <= len(accepted) <= 2 and refused
    for purchase_id in refused:
        assert_rate_limited(answers[purchase_id])

    # The documented routes too (an enrolment, a profile change).
    assert_rate_limited(await pos.enrol(unique("cust")))
    assert_rate_limited(
        await pos.send(
            "PATCH",
            f"/v1/customers/{customer_id}",
            {"locale": "fi"},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
    )

    # Nothing of a refused call stored, nor published: the accepted purchases are on the
    # purchases topic (one customer's events share a partition, in order), the refused are not.
    assert await count_rows(db, purchases, purchases.c.purchase_id.in_(refused)) == 0
    on_kafka = await published_until(
        stack, topics.PURCHASES, customer_id, answers[accepted[-1]].json()["event_id"]
    )
    assert {e.data["purchase_id"] for e in on_kafka} == set(accepted)
    assert await count_rows(db, customers, customers.c.partner_id == pos.partner_id) == 1


async def test_another_partner_is_not_limited_by_it_and_null_restores_the_default(
    limited: httpx.AsyncClient,
) -> None:
    slow, _ = await new_partner(limited, rate_limit_per_second=0.5)
    listed = await limited.get("/v1/admin/partners", headers=ADMIN)
    [mine] = [p for p in listed.json()["items"] if p["partner_id"] == slow.partner_id]
    assert mine["rate_limit_per_second"] == 0.5
    other, _ = await new_partner(limited)

    assert (await slow.enrol(unique("cust"))).status_code == 202
    assert_rate_limited(await slow.enrol(unique("cust")))
    for _ in range(5):
        assert (await other.enrol(unique("cust"))).status_code == 202

    cleared = await set_limit(limited, slow.partner_id, None)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["rate_limit_per_second"] is None
    for _ in range(5):
        assert (await slow.enrol(unique("cust"))).status_code == 202


@pytest.mark.parametrize("limit", [0, -1, 100_001, "5", True])
async def test_a_limit_that_is_not_a_positive_number_is_refused(
    limited: httpx.AsyncClient, limit: object
) -> None:
    pos, _ = await new_partner(limited)
    assert_problem(await set_limit(limited, pos.partner_id, limit), 422)
    created = await limited.post(
        "/v1/admin/partners",
        json={"name": "Bad", "partner_id": unique("p"), "rate_limit_per_second": limit},
        headers=ADMIN,
    )
    assert_problem(created, 422)


async def test_only_an_admin_sets_a_limit_of_a_partner_that_exists(
    limited: httpx.AsyncClient,
) -> None:
    assert_problem(await set_limit(limited, unique("nobody"), 5), 404)
    pos, _ = await new_partner(limited)
    answer = await limited.put(
        f"/v1/admin/partners/{pos.partner_id}/rate-limit", json={"rate_limit_per_second": 5}
    )
    assert answer.status_code == 401
