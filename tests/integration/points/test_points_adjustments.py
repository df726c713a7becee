"""Staff adjustments on the real PostgreSQL and Kafka: points given and taken with actor and
reason, announced through the outbox, once per Idempotency-Key, problems for the rest."""

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.messaging import events, topics
from shared.web.auth import actor_of
from tests.integration.points.support import customer_with_lots
from tests.support.kafka import events_for
from tests.support.polling import eventually
from tests.support.services import ADMIN, READER
from tests.support.stack import ADMIN_TOKEN, Stack

pytestmark = pytest.mark.integration


async def available(points: httpx.AsyncClient, customer: str) -> int:
    balance = await points.get(f"/v1/customers/{customer}/balance", headers=READER)
    value: int = balance.json()["available"]
    return value


async def test_adjustments_give_and_take_points_and_are_announced_with_their_actor(
    stack: Stack, points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (100, 30))
    url = f"/v1/customers/{customer}/adjustments"
    given = await points.post(url, json={"points": 50, "reason": "late delivery"}, headers=ADMIN)
    taken = await points.post(url, json={"points": -120, "reason": "double credit"}, headers=ADMIN)
    assert (given.status_code, taken.status_code) == (201, 201)
    assert (given.json()["available_after"], taken.json()["available_after"]) == (150, 30)
    assert await available(points, customer) == 30

    async def adjusted() -> list[events.CloudEvent] | None:
        found = [
            e
            for e in await events_for(stack.kafka, topics.POINTS, customer)
            if e.type == events.POINTS_ADJUSTED
        ]
        return found if len(found) == 2 else None

    announced = await eventually(adjusted, what="two points.adjusted on the points topic")
    # The actor is the admin credential the calls carried, never a name in the body.
    actor = actor_of("admin", ADMIN_TOKEN)
    assert (given.json()["actor"], taken.json()["actor"]) == (actor, actor)
    assert sorted((e.data["points"], e.data["actor"], e.data["reason"]) for e in announced) == [
        (-120, actor, "double credit"),
        (50, actor, "late delivery"),
    ]


async def test_an_adjustment_taking_more_than_is_available_is_a_409_problem(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (40, 30))
    response = await points.post(
        f"/v1/customers/{customer}/adjustments",
        json={"points": -41, "reason": "fix"},
        headers=ADMIN,
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await available(points, customer) == 40


async def test_an_adjustment_of_nothing_or_for_an_unknown_customer_is_a_problem(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (40, 30))
    nothing = await points.post(
        f"/v1/customers/{customer}/adjustments",
        json={"points": 0, "reason": "fix"},
        headers=ADMIN,
    )
    unknown = await points.post(
        f"/v1/customers/c-{uuid.uuid4()}/adjustments",
        json={"points": 5, "reason": "fix"},
        headers=ADMIN,
    )
    reader = await points.post(
        f"/v1/customers/{customer}/adjustments",
        json={"points": 5, "reason": "fix"},
        headers=READER,
    )
    assert (nothing.status_code, unknown.status_code, reader.status_code) == (422, 404, 403)


async def test_a_retry_under_the_same_idempotency_key_adjusts_once(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (10, 30))
    headers = {**ADMIN, "Idempotency-Key": str(uuid.uuid4())}
    url = f"/v1/customers/{customer}/adjustments"
    body = {"points": 25, "reason": "birthday"}
    first = await points.post(url, json=body, headers=headers)
    again = await points.post(url, json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert await available(points, customer) == 35
