"""One welcome per email address (issue 19) on the real PostgreSQL and Kafka: a second
enrolment with an address already welcomed, in any case, is published with `welcome:
false`; of concurrent enrolments with one new address exactly one is welcomed."""

from __future__ import annotations

import asyncio
import importlib.util

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.domain.welcomes import welcome_key
from shared.messaging import events, topics
from tests.integration.ingest.support import Pos, published, unique
from tests.support.services import ADMIN
from tests.support.stack import REPO, Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def pos(client: httpx.AsyncClient) -> Pos:
    partner_id = unique("partner")
    response = await client.post(
        "/v1/admin/partners", json={"name": "Welcome Test", "partner_id": partner_id}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    created = response.json()
    return Pos(client, partner_id, created["api_key"], created["signing_secret"])


async def welcomed(stack: Stack, customer_id: str) -> bool:
    [event] = await published(stack, topics.CUSTOMERS, customer_id, 1)
    assert event.type == events.CUSTOMER_ENROLLED
    return events.CustomerEnrolled.model_validate(event.data).welcome


async def test_a_second_enrolment_with_a_welcomed_address_gets_no_welcome(
    stack: Stack, pos: Pos
) -> None:
    address = f"{unique('mia')}@example.com"
    first, second, third, other = (unique("cust") for _ in range(4))
    assert (await pos.enrol(first, email=address)).status_code == 202
    assert (await pos.enrol(second, email=address.upper())).status_code == 202
    assert (await pos.enrol(third)).status_code == 202  # no address: welcomed
    assert (await pos.enrol(other, email=f"other-{address}")).status_code == 202
    assert [await welcomed(stack, c) for c in (first, second, third, other)] == [
        True,
        False,
        True,
        True,
    ]


async def test_a_retried_enrolment_keeps_its_first_answer_and_its_welcome(
    stack: Stack, pos: Pos
) -> None:
    address = f"{unique('leo')}@example.com"
    customer = unique("cust")
    first = await pos.enrol(customer, email=address)
    again = await pos.enrol(customer, email=address)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert await welcomed(stack, customer) is True


async def test_of_concurrent_enrolments_with_one_address_exactly_one_is_welcomed(
    stack: Stack, pos: Pos
) -> None:
    address = f"{unique('race')}@example.com"
    customers = [unique("cust") for _ in range(6)]
    answers = await asyncio.gather(*(pos.enrol(c, email=address) for c in customers))
    assert [a.status_code for a in answers] == [202] * len(customers)
    assert sorted([await welcomed(stack, c) for c in customers]) == [False] * 5 + [True]


async def test_the_backfill_hashes_an_address_as_the_service_does(db: AsyncEngine) -> None:
    """Migration 0008 lists the addresses of members enrolled before it with this SQL."""
    path = REPO / "services/ingest/migrations/versions/0008_welcomed_emails.py"
    spec = importlib.util.spec_from_file_location("welcomed_emails_0008", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    async with db.connect() as conn:
        hashed = await conn.scalar(
            sa.text(f"SELECT {migration.HASHED_EMAIL.format(email=':email')}"),
            {"email": " Ada@Example.COM "},
        )
    assert hashed == welcome_key("ada@example.com")
