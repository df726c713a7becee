"""Points on the real PostgreSQL and Kafka: consume contract events, answer balances."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import httpx
import pytest

from services.points.api.app import create_app
from services.points.settings import PointsSettings
from shared import events, topics
from shared.events import CloudEvent, new_event
from tests.support.kafka import dead_letters, events_for, publish
from tests.support.polling import eventually
from tests.support.services import READER, running, settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
async def points(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    stack.migrate("points")
    settings = settings_for(PointsSettings, stack, "points")
    async with running(create_app, settings) as (_, client):
        yield client


def enrolment(customer_id: str) -> CloudEvent:
    return new_event(
        events.CustomerEnrolled(customer_id=customer_id, partner_id="demo", enrolled_at=NOW),
        source="ingest/demo",
        subject=customer_id,
        time=NOW,
    )


def purchase(customer_id: str, total: str, purchase_id: str | None = None) -> CloudEvent:
    return new_event(
        events.PurchaseCompleted(
            purchase_id=purchase_id or str(uuid.uuid4()),
            partner_id="demo",
            customer_id=customer_id,
            occurred_at=NOW,
            currency="EUR",
            total=Decimal(total),
        ),
        source="ingest/demo",
        subject=customer_id,
        time=NOW,
    )


async def balance_once(
    client: httpx.AsyncClient, customer_id: str, available: int
) -> dict[str, Any] | None:
    """The balance once it shows `available` points, else None (for `eventually`)."""
    response = await client.get(f"/v1/customers/{customer_id}/balance", headers=READER)
    if response.status_code != 200:
        return None
    body: dict[str, Any] = response.json()
    return body if body["available"] == available else None


async def test_welcome_bonus_and_purchases_make_the_balance(
    stack: Stack, points: httpx.AsyncClient
) -> None:
    customer = f"c-{uuid.uuid4()}"
    bootstrap = stack.kafka_bootstrap_servers
    await publish(bootstrap, topics.CUSTOMERS, customer, enrolment(customer))
    await publish(bootstrap, topics.PURCHASES, customer, purchase(customer, "300.00"))
    await publish(bootstrap, topics.PURCHASES, customer, purchase(customer, "250.99"))

    balance = await eventually(lambda: balance_once(points, customer, 650), what="650 points")
    assert balance["lifetime_earned"] == 650
    assert balance["pending"] == 0
    earned = await eventually(
        lambda: _n_events(bootstrap, customer, 3), what="three points.earned events"
    )
    assert sorted(e.data["points"] for e in earned) == [100, 250, 300]

    ledger = (await points.get(f"/v1/customers/{customer}/ledger?limit=2", headers=READER)).json()
    assert len(ledger["entries"]) == 2
    rest = await points.get(
        f"/v1/customers/{customer}/ledger?cursor={ledger['next_cursor']}", headers=READER
    )
    # Newest first across two pages, every entry once; the topics' relative order is Kafka's.
    entries = ledger["entries"] + rest.json()["entries"]
    assert sorted(e["points"] for e in entries) == [100, 250, 300]
    assert len({e["id"] for e in entries}) == 3
    assert rest.json()["next_cursor"] is None


async def test_a_redelivered_event_changes_nothing(stack: Stack, points: httpx.AsyncClient) -> None:
    customer = f"c-{uuid.uuid4()}"
    bootstrap = stack.kafka_bootstrap_servers
    first = purchase(customer, "40.00")
    for _ in range(3):
        await publish(bootstrap, topics.PURCHASES, customer, first)
    # The same purchase under a new event id must not earn twice either.
    await publish(
        bootstrap, topics.PURCHASES, customer, first.model_copy(update={"id": str(uuid.uuid4())})
    )
    marker = purchase(customer, "2.00")
    await publish(bootstrap, topics.PURCHASES, customer, marker)

    await eventually(lambda: balance_once(points, customer, 42), what="the marker purchase")
    assert len(await events_for(bootstrap, topics.POINTS, customer)) == 2


async def test_a_poison_message_is_dead_lettered_and_the_partition_moves_on(
    stack: Stack, points: httpx.AsyncClient
) -> None:
    customer = f"c-{uuid.uuid4()}"
    bootstrap = stack.kafka_bootstrap_servers
    await publish(bootstrap, topics.PURCHASES, customer, b'{"specversion": "1.0", "oops"')
    await publish(bootstrap, topics.PURCHASES, customer, purchase(customer, "12.00"))

    await eventually(lambda: balance_once(points, customer, 12), what="the purchase after it")
    dead = await dead_letters(bootstrap, topics.PURCHASES, key=customer, consumer="points")
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert headers["fedelta-consumer"] == b"points"
    assert b"ValidationError" in headers["fedelta-error"]


async def test_balance_of_an_unknown_customer_is_a_404_problem(points: httpx.AsyncClient) -> None:
    response = await points.get(f"/v1/customers/{uuid.uuid4()}/balance", headers=READER)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_balance_needs_a_service_token(points: httpx.AsyncClient) -> None:
    response = await points.get("/v1/customers/anyone/balance")
    assert response.status_code == 401
    assert response.json()["type"] == "urn:fedelta:problem:unauthorized"


async def _n_events(bootstrap: str, customer: str, count: int) -> list[CloudEvent] | None:
    found = await events_for(bootstrap, topics.POINTS, customer)
    return found if len(found) >= count else None


async def test_two_instances_share_the_partitions_without_double_effects(
    stack: Stack, points: httpx.AsyncClient
) -> None:
    """Scale-out: a second instance joins the group mid-stream; the rebalance may redeliver,
    and every balance must still be exact with exactly one points.earned per purchase."""
    bootstrap = stack.kafka_bootstrap_servers
    customers = [f"c-{uuid.uuid4()}" for _ in range(12)]
    settings = settings_for(PointsSettings, stack, "points")
    for customer in customers:
        await publish(bootstrap, topics.PURCHASES, customer, purchase(customer, "10.00"))
    async with running(create_app, settings) as (_, second):
        for customer in customers:
            await publish(bootstrap, topics.PURCHASES, customer, purchase(customer, "5.00"))
        for customer in customers:
            balance = await eventually(
                partial(balance_once, second, customer, 15), what=f"15 points for {customer}"
            )
            assert balance["lifetime_earned"] == 15
    for customer in customers:
        assert len(await events_for(bootstrap, topics.POINTS, customer)) == 2
