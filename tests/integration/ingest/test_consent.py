"""A member's consent set in the wallet, against the real PostgreSQL and Kafka: the web's
console credential (admin, naming the member) changes it through the path a partner's PATCH
takes (the next version, `customer.updated` on the customers topic); the same consent again
publishes nothing; a read token may not; an unknown or erased customer is a 404."""

from __future__ import annotations

import uuid

import httpx
import pytest

from shared.messaging import events, topics
from tests.integration.ingest.support import (
    Pos,
    assert_problem,
    published,
    published_until,
    unique,
)
from tests.support.services import ADMIN, READER
from tests.support.stack import CONSOLE_TOKEN, Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def pos(client: httpx.AsyncClient) -> Pos:
    partner_id = unique("partner")
    response = await client.post(
        "/v1/admin/partners", json={"name": "Consent Café", "partner_id": partner_id}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    created = response.json()
    return Pos(client, partner_id, created["api_key"], created["signing_secret"])


@pytest.fixture
async def customer_id(pos: Pos) -> str:
    customer_id = unique("cust")
    response = await pos.enrol(
        customer_id, email="ada@example.com", consent={"email": True, "sms": False}
    )
    assert response.status_code == 202, response.text
    return customer_id


def console(customer_id: str, key: str | None = None) -> dict[str, str]:
    """The web's credential, acting for the member, with a new Idempotency-Key unless given."""
    return {
        "Authorization": f"Bearer {CONSOLE_TOKEN}",
        "Fedelta-Actor": f"member:{customer_id}",
        "Idempotency-Key": key or str(uuid.uuid4()),
    }


def path(customer_id: str) -> str:
    return f"/v1/customers/{customer_id}/consent"


async def test_a_change_is_published_as_the_profile_s_next_version(
    stack: Stack, client: httpx.AsyncClient, pos: Pos, customer_id: str
) -> None:
    key = str(uuid.uuid4())
    body = {"email": False, "sms": True}
    response = await client.put(path(customer_id), json=body, headers=console(customer_id, key))
    assert response.status_code == 200, response.text
    assert response.json() == {"email": False, "sms": True, "version": 2}

    enrolled, updated = await published(stack, topics.CUSTOMERS, customer_id, 2)
    assert updated.type == events.CUSTOMER_UPDATED
    assert updated.source == "urn:fedelta:ingest:console"
    # All of the profile as it was, with the new consent and the next version.
    before = events.CustomerEnrolled.model_validate(enrolled.data)
    assert events.CustomerUpdated.model_validate(updated.data) == events.CustomerUpdated(
        **before.model_dump(exclude={"imported", "welcome", "consent", "version"}),
        consent=events.Consent(email=False, sms=True),
        version=2,
    )
    assert "member:" not in str(updated.data)  # who acted is logged, never published

    # The same call again (a form sent twice) is the first answer, replayed.
    again = await client.put(path(customer_id), json=body, headers=console(customer_id, key))
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == response.json()
    read = await client.get(path(customer_id), headers=console(customer_id))
    assert read.status_code == 200 and read.json() == response.json()


async def test_the_same_consent_again_publishes_nothing(
    stack: Stack, client: httpx.AsyncClient, pos: Pos, customer_id: str
) -> None:
    body = {"email": True, "sms": False}  # as at enrolment
    for _ in range(2):  # each under a new key: a new call, still nothing to change
        response = await client.put(path(customer_id), json=body, headers=console(customer_id))
        assert response.status_code == 200, response.text
        assert response.json() == {"email": True, "sms": False, "version": 1}
    # A partner's change after them: one customer's events share a partition, so whatever
    # the PUTs published would be on the topic before it.
    marker = await pos.send("PATCH", f"/v1/customers/{customer_id}", {"locale": "it"})
    assert marker.status_code == 202, marker.text
    found = await published_until(stack, topics.CUSTOMERS, customer_id, marker.json()["event_id"])
    assert [e.type for e in found] == [events.CUSTOMER_ENROLLED, events.CUSTOMER_UPDATED]
    assert events.CustomerUpdated.model_validate(found[-1].data).version == 2


async def test_a_read_token_may_not(client: httpx.AsyncClient, customer_id: str) -> None:
    body = {"email": False, "sms": False}
    response = await client.put(path(customer_id), json=body, headers=READER)
    assert assert_problem(response, 403)["type"] == "urn:fedelta:problem:forbidden"
    read = await client.get(path(customer_id), headers=console(customer_id))
    assert read.json() == {"email": True, "sms": False, "version": 1}


async def test_an_unknown_or_erased_customer_is_a_404(
    client: httpx.AsyncClient, pos: Pos, customer_id: str
) -> None:
    body = {"email": True, "sms": True}
    nobody = unique("nobody")
    unknown = await client.put(path(nobody), json=body, headers=console(nobody))
    assert assert_problem(unknown, 404)["type"] == "urn:fedelta:problem:unknown-customer"
    assert_problem(await client.get(path(nobody), headers=console(nobody)), 404)

    erased = await pos.send("DELETE", f"/v1/customers/{customer_id}")
    assert erased.status_code == 202, erased.text
    gone = await client.put(path(customer_id), json=body, headers=console(customer_id))
    assert assert_problem(gone, 404)["type"] == "urn:fedelta:problem:erased-customer"
    assert_problem(await client.get(path(customer_id), headers=console(customer_id)), 404)
