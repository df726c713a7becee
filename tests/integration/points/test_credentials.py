"""Points with credentials of its own (issue 19) on the real PostgreSQL and Kafka: another
service's token is unknown, a read token cannot adjust, an operate token runs jobs but adjusts
nothing, a rotation accepts both tokens and then the new one only, and an adjustment records
the credential as its actor, never a name in the body."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.points.adapters import tables
from services.points.api.app import create_app
from services.points.settings import PointsSettings
from shared.messaging import events, topics
from shared.web.auth import actor_of
from tests.integration.points.support import customer_with_lots
from tests.support.kafka import events_for
from tests.support.polling import eventually
from tests.support.services import running, settings_for
from tests.support.stack import ADMIN_TOKEN, CONSOLE_TOKEN, Stack, sha256_hex

pytestmark = pytest.mark.integration

ADMIN = "points-own-admin-token-0123456789abcdef"
ADMIN_NEXT = "points-own-admin-token-next-0123456789ab"
OPERATE = "points-own-operate-token-0123456789abcd"
READ = "points-own-read-token-0123456789abcdefgh"


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def own_settings(stack: Stack, **overrides: str) -> PointsSettings:
    tokens = {
        "admin_token_sha256": sha256_hex(ADMIN),
        "operate_token_sha256": sha256_hex(OPERATE),
        "read_token_sha256": sha256_hex(READ),
    }
    return settings_for(PointsSettings, stack, "points", **(tokens | overrides))


@pytest.fixture(scope="module")
async def points(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """Points mid-rotation of its admin token: the current one and the next are accepted."""
    stack.migrate("points")
    settings = own_settings(stack, admin_token_sha256_next=sha256_hex(ADMIN_NEXT))
    async with running(create_app, settings) as (_, client):
        yield client


async def available(points: httpx.AsyncClient, customer: str) -> int:
    balance = await points.get(f"/v1/customers/{customer}/balance", headers=bearer(READ))
    assert balance.status_code == 200, balance.text
    value: int = balance.json()["available"]
    return value


async def test_a_token_of_another_service_is_unknown_here(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (40, 30))
    # ADMIN_TOKEN is what the other services of the test stack take as admin.
    read = await points.get(f"/v1/customers/{customer}/balance", headers=bearer(ADMIN_TOKEN))
    adjusted = await points.post(
        f"/v1/customers/{customer}/adjustments",
        json={"points": 1_000_000, "reason": "gift"},
        headers=bearer(ADMIN_TOKEN),
    )
    assert (read.status_code, adjusted.status_code) == (401, 401)
    assert adjusted.json()["type"] == "urn:fedelta:problem:unauthorized"
    assert await available(points, customer) == 40


async def test_a_read_token_reads_but_cannot_adjust(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (40, 30))
    refused = await points.post(
        f"/v1/customers/{customer}/adjustments",
        json={"points": 5, "reason": "fix"},
        headers=bearer(READ),
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert await available(points, customer) == 40


async def test_an_operate_token_runs_jobs_and_decides_held_earnings_but_adjusts_nothing(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (40, 30))
    # As of the floor: a run that changes nothing (other tests' data stays as it is). The
    # service's own scheduler may be running it (409): then again, once it is done.

    async def ran() -> httpx.Response | None:
        job = await points.post(
            "/v1/admin/jobs/expire-points",
            params={"as_of": "2000-01-01T00:00:00Z"},
            headers=bearer(OPERATE),
        )
        return None if job.status_code == 409 else job

    job = await eventually(ran, what="the job run with the operate token")
    assert job.status_code == 200, job.text
    unknown_held = f"/v1/held/h-{uuid.uuid4()}/release"
    assert (await points.post(unknown_held, headers=bearer(OPERATE))).status_code == 404
    assert (await points.post(unknown_held, headers=bearer(READ))).status_code == 403
    as_reader = await points.post(
        "/v1/admin/jobs/expire-points",
        params={"as_of": "2000-01-01T00:00:00Z"},
        headers=bearer(READ),
    )
    adjusted = await points.post(
        f"/v1/customers/{customer}/adjustments",
        json={"points": 5, "reason": "fix"},
        headers=bearer(OPERATE),
    )
    assert (as_reader.status_code, adjusted.status_code) == (403, 403)
    assert "admin role" in adjusted.json()["detail"]
    assert await available(points, customer) == 40


async def test_an_adjustment_records_the_credential_as_its_actor(
    stack: Stack, points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (40, 30))
    url = f"/v1/customers/{customer}/adjustments"
    named = await points.post(
        url, json={"points": 5, "reason": "fix", "actor": "someone-else"}, headers=bearer(ADMIN)
    )
    assert named.status_code == 422  # a body may not say who acted
    assert await available(points, customer) == 40

    given = await points.post(url, json={"points": 5, "reason": "fix"}, headers=bearer(ADMIN))
    taken = await points.post(url, json={"points": -3, "reason": "fix"}, headers=bearer(ADMIN_NEXT))
    assert (given.status_code, taken.status_code) == (201, 201), (given.text, taken.text)
    first, second = actor_of("admin", ADMIN), actor_of("admin", ADMIN_NEXT)
    assert first != second and first.startswith("admin:")
    assert (given.json()["actor"], taken.json()["actor"]) == (first, second)
    async with engine.connect() as conn:
        recorded = (
            await conn.execute(
                sa.select(tables.adjustments.c.points, tables.adjustments.c.actor).where(
                    tables.adjustments.c.customer_id == customer
                )
            )
        ).all()
    assert sorted(map(tuple, recorded)) == [(-3, second), (5, first)]

    async def announced() -> list[events.CloudEvent] | None:
        found = [
            e
            for e in await events_for(stack.kafka, topics.POINTS, customer)
            if e.type == events.POINTS_ADJUSTED
        ]
        return found if len(found) == 2 else None

    adjusted = await eventually(announced, what="two points.adjusted on the points topic")
    assert sorted((e.data["points"], e.data["actor"]) for e in adjusted) == [
        (-3, second),
        (5, first),
    ]


async def test_a_rotation_ends_with_the_new_token_alone(
    stack: Stack, points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (40, 30))
    url = f"/v1/customers/{customer}/balance"
    # Mid-rotation (the module's service): both admin tokens.
    during = [(await points.get(url, headers=bearer(t))).status_code for t in (ADMIN, ADMIN_NEXT)]
    # Rotated: the next token is now the current one, the old one is gone.
    rotated = own_settings(stack, admin_token_sha256=sha256_hex(ADMIN_NEXT), run_workers="false")
    async with running(create_app, rotated) as (_, after):
        old = await after.get(url, headers=bearer(ADMIN))
        new = await after.get(url, headers=bearer(ADMIN_NEXT))
        refused = await after.post(
            f"/v1/customers/{customer}/adjustments",
            json={"points": 1_000_000, "reason": "gift"},
            headers=bearer(ADMIN),
        )
    assert during == [200, 200]
    assert (old.status_code, new.status_code, refused.status_code) == (401, 200, 401)
    assert await available(points, customer) == 40


async def test_the_consoles_adjustment_is_recorded_and_shown_with_the_signed_in_person(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (40, 30))
    url = f"/v1/customers/{customer}/adjustments"
    body = {"points": 7, "reason": "goodwill"}
    anonymous = await points.post(url, json=body, headers=bearer(CONSOLE_TOKEN))
    assert anonymous.status_code == 400  # the console names who acts
    adjusted = await points.post(
        url, json=body, headers=bearer(CONSOLE_TOKEN, **{"Fedelta-Actor": "staff:alice"})
    )
    assert adjusted.status_code == 201, adjusted.text
    ledger = await points.get(f"/v1/customers/{customer}/ledger", headers=bearer(READ))
    entries = ledger.json()["entries"]
    [entry] = [e for e in entries if e["reason"] == "goodwill"]
    assert (entry["points"], entry["actor"]) == (7, "console:staff:alice")
    assert all("actor" not in e for e in entries if e is not entry)  # made by no person
