"""Tiers with credentials of its own (issue 19) on the real PostgreSQL and Kafka: points'
token is unknown here, a read or operate token cannot override a tier, an operate token runs
the jobs, and an override records the credential as its actor, never a name in the body."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.tiers.settings import TiersSettings
from shared.messaging import events, topics
from shared.web.auth import actor_of
from tests.support import factories
from tests.support.database import engine_for
from tests.support.kafka import events_for, publish
from tests.support.polling import eventually
from tests.support.services import settings_for
from tests.support.stack import Stack, sha256_hex
from tests.support.tiers import forget_switched_programs

pytestmark = pytest.mark.integration

ADMIN = "tiers-own-admin-token-0123456789abcdef"
OPERATE = "tiers-own-operate-token-0123456789abcd"
READ = "tiers-own-read-token-0123456789abcdefgh"
POINTS_ADMIN = "points-own-admin-token-0123456789abcdef"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
async def settings(stack: Stack) -> TiersSettings:
    """Tiers with its own tokens (the `client` and `engine` fixtures of conftest.py use it)."""
    async with engine_for(stack, "tiers", pool_size=1) as engine:
        await forget_switched_programs(engine)
    return settings_for(
        TiersSettings,
        stack,
        "tiers",
        admin_token_sha256=sha256_hex(ADMIN),
        operate_token_sha256=sha256_hex(OPERATE),
        read_token_sha256=sha256_hex(READ),
    )


async def enrolled_customer(stack: Stack, client: httpx.AsyncClient) -> str:
    customer_id = f"tiers-credentials-it-{uuid.uuid4()}"
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    for event in (
        factories.enrolment(customer_id, at=at),
        factories.purchase(customer_id, "100", at=at),
    ):
        assert event.subject is not None
        await publish(stack.kafka, event.topic, event.subject, event)

    async def standing() -> dict[str, Any] | None:
        response = await client.get(f"/v1/customers/{customer_id}/tier", headers=bearer(READ))
        return response.json() if response.status_code == 200 else None

    body = await eventually(standing, within=60, what="the customer's tier")
    assert body["tier"] == "bronze"
    return customer_id


async def test_only_tiers_own_admin_token_overrides_and_it_is_the_actor(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    customer_id = await enrolled_customer(stack, client)
    url = f"/v1/customers/{customer_id}/tier"
    body = {"tier": "gold", "reason": "store opening guest"}

    foreign = await client.post(url, json=body, headers=bearer(POINTS_ADMIN))
    as_reader = await client.post(url, json=body, headers=bearer(READ))
    as_operator = await client.post(url, json=body, headers=bearer(OPERATE))
    named = await client.post(url, json=body | {"actor": "maria"}, headers=bearer(ADMIN))
    assert [r.status_code for r in (foreign, as_reader, as_operator, named)] == [401, 403, 403, 422]
    assert (await client.get(url, headers=bearer(READ))).json()["tier"] == "bronze"

    overridden = await client.post(url, json=body, headers=bearer(ADMIN))
    assert overridden.status_code == 200, overridden.text
    history = await client.get(f"{url}/history", headers=bearer(READ))
    actor = actor_of("admin", ADMIN)
    newest = history.json()["changes"][0]
    assert (newest["to_tier"], newest["reason"], newest["actor"]) == (
        "gold",
        "store opening guest",
        actor,
    )

    async def announced() -> list[events.CloudEvent] | None:
        found = [
            e
            for e in await events_for(stack.kafka, topics.TIERS, customer_id)
            if e.type == events.TIER_CHANGED and e.data["to_tier"] == "gold"
        ]
        return found or None

    [changed] = await eventually(announced, what="the override's tier.changed")
    assert changed.data["reason"] == "store opening guest"


async def test_an_operate_token_runs_the_jobs(client: httpx.AsyncClient) -> None:
    as_of = {"as_of": "2000-01-01T00:00:00Z"}  # the floor: a run that changes nothing

    async def run() -> httpx.Response | None:
        job = await client.post("/v1/admin/jobs/all", params=as_of, headers=bearer(OPERATE))
        return None if job.status_code == 409 else job  # the scheduler's run, then ours

    ran = await eventually(run, what="the jobs run with the operate token")
    as_reader = await client.post("/v1/admin/jobs/all", params=as_of, headers=bearer(READ))
    foreign = await client.post("/v1/admin/jobs/all", params=as_of, headers=bearer(POINTS_ADMIN))
    assert (ran.status_code, as_reader.status_code, foreign.status_code) == (200, 403, 401)
