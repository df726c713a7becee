"""The tiers service in-process, with its real consumer and relay, on the test stack's
PostgreSQL and Kafka: contract events in, tier state over HTTP and tier.changed out."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from services.tiers.api.app import create_app
from services.tiers.settings import TiersSettings
from shared import events, topics
from shared.events import CloudEvent, derived_event_id, new_event
from tests.support.kafka import dead_letters, events_for, publish
from tests.support.polling import eventually
from tests.support.services import READER, running, settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

PARTNER = "demo"
# Generous: the first test also waits for the consumer to join its group.
WITHIN = 60.0


@pytest.fixture(scope="module")
def settings(stack: Stack) -> TiersSettings:
    stack.migrate("tiers")
    return settings_for(TiersSettings, stack, "tiers")


@pytest.fixture(scope="module")
async def client(settings: TiersSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app, settings) as (_, client):
        yield client


def new_customer_id() -> str:
    return f"tiers-it-{uuid.uuid4()}"


def enrolled(customer_id: str, at: datetime) -> CloudEvent:
    return new_event(
        events.CustomerEnrolled(customer_id=customer_id, partner_id=PARTNER, enrolled_at=at),
        source=f"ingest/{PARTNER}",
        subject=customer_id,
        time=at,
    )


def purchase(
    customer_id: str, total: str, at: datetime, purchase_id: str | None = None
) -> CloudEvent:
    return new_event(
        events.PurchaseCompleted(
            purchase_id=purchase_id or str(uuid.uuid4()),
            partner_id=PARTNER,
            customer_id=customer_id,
            occurred_at=at,
            currency="EUR",
            total=Decimal(total),
        ),
        source=f"ingest/{PARTNER}",
        subject=customer_id,
        time=at,
    )


async def send(stack: Stack, event: CloudEvent) -> None:
    await publish(stack.kafka_bootstrap_servers, event.topic, event.subject, event)


async def tier_once(
    client: httpx.AsyncClient, customer_id: str, spend: str
) -> dict[str, Any] | None:
    """The customer's tier document once their qualifying spend is `spend`, else None."""
    response = await client.get(f"/v1/customers/{customer_id}/tier", headers=READER)
    if response.status_code != 200:
        return None
    body: dict[str, Any] = response.json()
    return body if Decimal(body["qualifying_spend"]) == Decimal(spend) else None


async def wait_for_spend(client: httpx.AsyncClient, customer_id: str, spend: str) -> dict[str, Any]:
    return await eventually(
        lambda: tier_once(client, customer_id, spend),
        within=WITHIN,
        what=f"a qualifying spend of {spend}",
    )


async def tier_changes(stack: Stack, customer_id: str) -> list[CloudEvent]:
    return await events_for(stack.kafka_bootstrap_servers, topics.TIERS, customer_id)


async def some_tier_changes(stack: Stack, customer_id: str) -> list[CloudEvent] | None:
    return await tier_changes(stack, customer_id) or None


async def test_purchases_of_300_and_250_make_an_enrolled_customer_silver_once(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    customer = new_customer_id()
    now = datetime.now(UTC)
    enrolled_at = now - timedelta(days=10)
    second_at = now - timedelta(hours=1)
    await send(stack, enrolled(customer, enrolled_at))
    await send(stack, purchase(customer, "300", now - timedelta(days=2)))
    crossing = purchase(customer, "250", second_at)
    await send(stack, crossing)

    body = await wait_for_spend(client, customer, "550")
    assert body["tier"] == "silver"
    assert body["qualifying_spend"] == "550.00"
    assert (body["next_tier"], body["amount_to_next_tier"]) == ("gold", "1450.00")
    assert datetime.fromisoformat(body["since"]) == second_at
    assert datetime.fromisoformat(body["review_at"]) == second_at + timedelta(days=365)

    published = await eventually(
        lambda: some_tier_changes(stack, customer), within=WITHIN, what="a tier.changed event"
    )
    [changed] = published
    assert changed.type == events.TIER_CHANGED
    assert changed.id == derived_event_id(crossing.id, "tier-changed")
    assert changed.source == "tiers"
    payload = events.TierChanged.model_validate(changed.data)
    assert (payload.from_tier, payload.to_tier, payload.direction) == ("bronze", "silver", "up")
    assert payload.reason == "qualifying_spend"
    assert payload.effective_at == second_at


async def test_an_event_delivered_twice_counts_once(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    customer = new_customer_id()
    now = datetime.now(UTC)
    twice = purchase(customer, "300", now - timedelta(hours=2))
    await send(stack, twice)
    await send(stack, twice)
    # Applied after both copies, being later on the same partition.
    await send(stack, purchase(customer, "1", now - timedelta(hours=1)))

    body = await wait_for_spend(client, customer, "301")
    assert body["tier"] == "bronze"
    assert await tier_changes(stack, customer) == []


async def test_one_purchase_under_two_event_ids_counts_once(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    customer = new_customer_id()
    now = datetime.now(UTC)
    purchase_id = str(uuid.uuid4())
    first = purchase(customer, "300", now - timedelta(hours=2), purchase_id=purchase_id)
    again = purchase(customer, "300", now - timedelta(hours=2), purchase_id=purchase_id)
    assert first.id != again.id
    await send(stack, first)
    await send(stack, again)
    await send(stack, purchase(customer, "1", now - timedelta(hours=1)))

    body = await wait_for_spend(client, customer, "301")
    assert body["tier"] == "bronze"
    assert await tier_changes(stack, customer) == []


def _with_data(event: CloudEvent, **changes: Any) -> bytes:
    document = event.model_dump(mode="json")
    document["data"].update(changes)
    document["data"] = {k: v for k, v in document["data"].items() if v is not None}
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda event: b'{"specversion": "1.0", "id": ', id="bad-json"),
        pytest.param(lambda event: _with_data(event, total=0.1 + 0.2), id="float-garbage-total"),
        pytest.param(lambda event: _with_data(event, occurred_at=None), id="missing-field"),
    ],
)
async def test_a_malformed_message_is_dead_lettered_and_the_partition_moves_on(
    stack: Stack, client: httpx.AsyncClient, spoil: Any
) -> None:
    customer = new_customer_id()
    now = datetime.now(UTC)
    bad: bytes = spoil(purchase(customer, "700", now - timedelta(hours=2)))
    await publish(stack.kafka_bootstrap_servers, topics.PURCHASES, customer, bad)
    await send(stack, purchase(customer, "600", now - timedelta(hours=1)))

    body = await wait_for_spend(client, customer, "600")
    assert body["tier"] == "silver"

    async def dead_lettered_by_tiers() -> list[Any] | None:
        return (
            await dead_letters(
                stack.kafka_bootstrap_servers, topics.PURCHASES, key=customer, consumer="tiers"
            )
            or None
        )

    [dead] = await eventually(
        dead_lettered_by_tiers, within=WITHIN, what="the dead-lettered message"
    )
    assert dead.value == bad
    headers = dict(dead.headers)
    assert headers["fedelta-error"]
    assert headers["fedelta-consumer"] == b"tiers"
    assert headers["fedelta-original-topic"] == topics.PURCHASES.encode()


async def test_an_unknown_customer_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1/customers/{new_customer_id()}/tier", headers=READER)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:fedelta:problem:unknown-customer"


async def test_reading_a_tier_needs_a_service_token(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1/customers/{new_customer_id()}/tier")
    assert response.status_code == 401


async def test_the_tier_definitions_are_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/tiers", headers=READER)
    assert response.status_code == 200
    body = response.json()
    assert [(t["name"], Decimal(t["threshold"])) for t in body["tiers"]] == [
        ("bronze", Decimal(0)),
        ("silver", Decimal(500)),
        ("gold", Decimal(2000)),
        ("platinum", Decimal(5000)),
    ]
    assert body["currency"] == "EUR"
    assert body["qualifying_window_days"] == 365
    assert body["downgrade_policy"] == "one_down"
