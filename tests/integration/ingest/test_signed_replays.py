"""Issue 19: a captured signed call without an id of its own (a profile change, an erasure)
replayed within the signature's window: answered as the first time with the first
Idempotency-Key, refused (409 `signature-replayed`, nothing changed) under another key or
without one. Calls deduplicated by their own ids (enrolments, purchases) answer as before."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.adapters import tables
from shared.web.auth import SIGNATURE_HEADER, sign
from tests.integration.ingest.support import PROBLEM_JSON, Pos, unique
from tests.support.services import ADMIN

pytestmark = pytest.mark.integration


@pytest.fixture
async def pos(client: httpx.AsyncClient) -> Pos:
    response = await client.post(
        "/v1/admin/partners", json={"name": "Replay Café", "partner_id": unique("p")}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    created = response.json()
    return Pos(client, created["partner_id"], created["api_key"], created["signing_secret"])


@pytest.fixture
async def customer_id(pos: Pos) -> str:
    customer_id = unique("cust")
    response = await pos.enrol(customer_id, email="ada@example.com", consent={"email": True})
    assert response.status_code == 202, response.text
    return customer_id


class Captured:
    """One signed request as it crossed the wire: sent again byte for byte, with the key
    (or none) the attacker chooses."""

    def __init__(self, pos: Pos, method: str, path: str, body: Any) -> None:
        self.pos, self.method, self.path = pos, method, path
        self.content = b"" if body is None else json.dumps(body).encode()
        self.signature = sign(pos.signing_secret, int(time.time()), method, path, self.content)

    async def send(self, key: str | None = None) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {self.pos.api_key}",
            SIGNATURE_HEADER: self.signature,
            "Content-Type": "application/json",
        }
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.pos.client.request(
            self.method, self.path, content=self.content, headers=headers
        )


async def _consent_and_version(db: AsyncEngine, customer_id: str) -> tuple[bool, int]:
    async with db.connect() as conn:
        row = (
            await conn.execute(
                sa.select(tables.customers.c.consent_email, tables.customers.c.version).where(
                    tables.customers.c.customer_id == customer_id
                )
            )
        ).one()
    return bool(row.consent_email), int(row.version)


def _replayed(response: httpx.Response) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["type"].endswith("signature-replayed")
    assert "sign a new request" in response.json()["detail"]


async def test_a_captured_consent_change_replayed_without_its_key_is_refused(
    pos: Pos, customer_id: str, db: AsyncEngine
) -> None:
    path = f"/v1/customers/{customer_id}"
    withdraw_then_give = Captured(pos, "PATCH", path, {"consent": {"email": True}})
    # The member withdraws consent (a new, later-signed call) after the captured one...
    assert (await withdraw_then_give.send()).status_code == 202
    withdrawn = await pos.send("PATCH", path, {"consent": {"email": False}})
    assert withdrawn.status_code == 202, withdrawn.text
    before = await _consent_and_version(db, customer_id)
    assert before[0] is False

    # ...and the captured call, replayed within the window, does not bring it back.
    _replayed(await withdraw_then_give.send())
    _replayed(await withdraw_then_give.send(key=unique("k")))
    assert await _consent_and_version(db, customer_id) == before


async def test_the_same_signed_change_with_its_first_key_is_answered_as_the_first_time(
    pos: Pos, customer_id: str, db: AsyncEngine
) -> None:
    key = unique("k")
    change = Captured(pos, "PATCH", f"/v1/customers/{customer_id}", {"locale": "fi"})
    first = await change.send(key)
    assert first.status_code == 202, first.text
    version = (await _consent_and_version(db, customer_id))[1]

    again = await change.send(key)
    assert again.status_code == 202, again.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    _replayed(await change.send(key=unique("other")))
    _replayed(await change.send())
    assert (await _consent_and_version(db, customer_id))[1] == version


async def test_a_change_signed_anew_applies_again(pos: Pos, customer_id: str) -> None:
    path = f"/v1/customers/{customer_id}"
    first = Captured(pos, "PATCH", path, {"locale": "fi"})
    assert (await first.send()).status_code == 202
    # The same change, signed at another second: another signature, applied again.
    resigned = await pos.send("PATCH", path, {"locale": "fi"}, timestamp=int(time.time()) - 5)
    assert resigned.status_code == 202, resigned.text


async def test_a_refused_change_is_forgotten_and_may_be_retried_with_its_key(
    pos: Pos, db: AsyncEngine
) -> None:
    # A 404 changed nothing: its signature is not kept, so its retry is answered anew.
    change = Captured(pos, "PATCH", f"/v1/customers/{unique('nobody')}", {"locale": "fi"})
    key = unique("k")
    assert (await change.send(key)).status_code == 404
    assert (await change.send(key)).status_code == 404


async def test_a_captured_erasure_replayed_under_another_key_is_refused(
    pos: Pos, customer_id: str
) -> None:
    key = unique("k")
    erasure = Captured(pos, "DELETE", f"/v1/customers/{customer_id}", None)
    first = await erasure.send(key)
    assert first.status_code == 202, first.text
    again = await erasure.send(key)
    assert (again.status_code, again.json()) == (202, first.json())
    _replayed(await erasure.send(unique("other")))
    _replayed(await erasure.send())


async def test_calls_with_ids_of_their_own_answer_a_replay_as_before(pos: Pos) -> None:
    customer_id = unique("cust")
    enrolment = Captured(pos, "POST", "/v1/customers", {"customer_id": customer_id})
    first = await enrolment.send()
    assert first.status_code == 202, first.text
    again = await enrolment.send(unique("k"))
    assert (again.status_code, again.json()) == (202, first.json())
