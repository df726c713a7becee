"""Issue 19, a flood of unknown API keys against the real ingest: each costs a lookup only
within the configured rate, the rest are answered 429 with Retry-After before any lookup,
and a partner's own calls go through all along."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.ingest.api.app import create_app
from services.ingest.settings import IngestSettings
from tests.integration.ingest.support import Pos, unique
from tests.support.polling import eventually
from tests.support.services import ADMIN, running, settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def guarded(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    stack.migrate("ingest")
    settings = settings_for(
        IngestSettings,
        stack,
        "ingest",
        unknown_key_lookups_per_second="5",
        unknown_key_cache_seconds="60",
    )
    async with running(create_app, settings) as (_, client):
        yield client


async def test_a_flood_of_random_keys_is_throttled_and_partners_still_get_through(
    guarded: httpx.AsyncClient,
) -> None:
    created = await guarded.post(
        "/v1/admin/partners", json={"name": "Flooded", "partner_id": unique("p")}, headers=ADMIN
    )
    assert created.status_code == 201, created.text
    body = created.json()
    pos = Pos(guarded, body["partner_id"], body["api_key"], body["signing_secret"])

    async def stranger() -> httpx.Response:
        return await guarded.post(
            "/v1/customers",
            json={"customer_id": "c"},
            headers={"Authorization": f"Bearer {uuid.uuid4().hex}"},
        )

    answers = await asyncio.gather(*(stranger() for _ in range(60)))
    statuses = [a.status_code for a in answers]
    assert set(statuses) == {401, 429}
    assert statuses.count(401) <= 10  # the bucket's second and what it refilled meanwhile
    throttled = next(a for a in answers if a.status_code == 429)
    assert throttled.headers["retry-after"] == "1"
    assert throttled.json()["type"] == "urn:fedelta:problem:unknown-keys-throttled"

    # One wrong key, once the bucket has a token again: looked up once, then remembered, so
    # twenty more are 401s without a lookup (a lookup each would empty the bucket: 429s).
    wrong = {"Authorization": "Bearer not-a-partner-key-0123456789"}

    async def looked_up() -> bool | None:
        answer = await guarded.post("/v1/customers", json={"customer_id": "c"}, headers=wrong)
        return True if answer.status_code == 401 else None

    await eventually(looked_up, within=10, what="a token for the wrong key's lookup")
    for _ in range(20):
        again = await guarded.post("/v1/customers", json={"customer_id": "c"}, headers=wrong)
        assert again.status_code == 401

    enrolled = await pos.enrol(unique("cust"))
    assert enrolled.status_code == 202, enrolled.text
