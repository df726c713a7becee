"""The tiers service in-process, with its real consumer and relay, on the test stack's
PostgreSQL and Kafka: contract events in, tier state over HTTP and tier.changed out."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.tiers.adapters.tables import customers, outbox, qualifying_activity, tier_history
from services.tiers.bootstrap import make_subscription
from services.tiers.domain.model import Program, SpendBasis
from services.tiers.programs import ProgramSource
from shared.clock import FixedClock
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent, derived_event_id, new_event
from shared.messaging.kafka import client_options
from tests.support import factories
from tests.support.kafka import dead_letters, events_for, provision_partners, publish, read_all
from tests.support.polling import eventually
from tests.support.services import READER
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

PARTNER = "demo"
# Generous: the first test also waits for the consumer to join its group.
WITHIN = 60.0


def new_customer_id() -> str:
    return f"tiers-it-{uuid.uuid4()}"


def enrolled(customer_id: str, at: datetime) -> CloudEvent:
    return factories.enrolment(customer_id, at=at)


def purchase(
    customer_id: str,
    total: str,
    at: datetime,
    purchase_id: str | None = None,
    currency: str = "EUR",
) -> CloudEvent:
    return factories.purchase(customer_id, total, at=at, purchase_id=purchase_id, currency=currency)


def refund(customer_id: str, purchase_id: str, amount: str, at: datetime) -> CloudEvent:
    return factories.refund(customer_id, purchase_id, amount, at=at)


async def send(stack: Stack, event: CloudEvent) -> None:
    await publish(stack.kafka, event.topic, event.subject, event)


async def send_all(stack: Stack, batch: list[CloudEvent]) -> None:
    """Every event with one producer, flushed once: they reach the consumer in few polls."""
    await provision_partners(stack.kafka, batch)
    producer = AIOKafkaProducer(**client_options(stack.kafka), acks="all")
    await producer.start()
    try:
        for event in batch:
            assert event.subject is not None
            await producer.send(event.topic, value=event.to_bytes(), key=event.subject.encode())
        await producer.flush()
    finally:
        await producer.stop()


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
    return await events_for(stack.kafka, topics.TIERS, customer_id)


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
    assert changed.source == "urn:fedelta:tiers"
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
    await publish(stack.kafka, topics.PURCHASES, customer, bad)
    await send(stack, purchase(customer, "600", now - timedelta(hours=1)))

    body = await wait_for_spend(client, customer, "600")
    assert body["tier"] == "silver"

    async def dead_lettered_by_tiers() -> list[Any] | None:
        return (
            await dead_letters(stack.kafka, topics.PURCHASES, key=customer, consumer="tiers")
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


# -- the batch path ---------------------------------------------------------------------------


def interleaved_story(customer_ids: list[str], now: datetime) -> list[CloudEvent]:
    """Each customer's events in their order, the customers interleaved as partitions would
    deliver them: enrolment before or after the first purchase, a refund, a late purchase,
    one purchase under two event ids, crossings into silver, gold and platinum."""
    hour = timedelta(hours=1)
    stories = []
    for n, customer in enumerate(customer_ids):
        first = purchase(customer, "300", now - 50 * hour)
        payload = events.PurchaseCompleted.model_validate(first.data)
        same = purchase(customer, "300", now - 50 * hour, purchase_id=payload.purchase_id)
        stories.append(
            [
                enrolled(customer, now - 60 * hour) if n % 2 else first,
                first if n % 2 else enrolled(customer, now - 60 * hour),
                same,
                refund(customer, payload.purchase_id, "100", now - 49 * hour),
                purchase(customer, "350", now - 40 * hour),
                purchase(customer, "1600", now - 45 * hour),  # reported late
                purchase(customer, f"{1000 * n + 1}", now - 30 * hour),
            ]
        )
    return [story[i] for i in range(7) for story in stories]


async def tier_state(conn: AsyncConnection, customer_ids: list[str]) -> dict[str, Any]:
    """Everything tiers stores about these customers, and the events it would publish."""

    def of(table: sa.Table, column: str) -> sa.ColumnElement[bool]:
        return table.c[column].in_(customer_ids)

    tiers = await conn.execute(sa.select(customers).where(of(customers, "customer_id")))
    activity = await conn.execute(
        sa.select(
            qualifying_activity.c.activity_id,
            qualifying_activity.c.customer_id,
            qualifying_activity.c.amount,
            qualifying_activity.c.occurred_at,
        )
        .where(of(qualifying_activity, "customer_id"))
        .order_by(qualifying_activity.c.activity_id)
    )
    history = await conn.execute(
        sa.select(
            tier_history.c.customer_id,
            tier_history.c.from_tier,
            tier_history.c.to_tier,
            tier_history.c.effective_at,
        )
        .where(of(tier_history, "customer_id"))
        .order_by(tier_history.c.id)
    )
    published = await conn.execute(
        sa.select(outbox.c.event_id, outbox.c.topic, outbox.c.key, outbox.c.payload)
        .where(of(outbox, "key"))
        .order_by(outbox.c.id)
    )
    return {
        "customers": sorted(tuple(row) for row in tiers),
        "activity": [tuple(row) for row in activity],
        # Per customer, in the order it happened (customers interleave differently).
        "history": sorted((tuple(row) for row in history), key=lambda row: row[0]),
        "outbox": sorted((tuple(row) for row in published), key=lambda row: str(row[2])),
    }


async def applied(
    engine: AsyncEngine, batches: list[list[CloudEvent]], customer_ids: list[str], now: datetime
) -> dict[str, Any]:
    """The state the batch handler leaves after these batches, in one transaction that is
    rolled back: the test leaves nothing behind for the running relay to publish."""
    handle = make_subscription(ProgramSource(Program()), FixedClock(now)).handle
    async with engine.connect() as conn, conn.begin() as transaction:
        for batch in batches:
            await handle(conn, batch)
        state = await tier_state(conn, customer_ids)
        await transaction.rollback()
    return state


async def test_a_batch_on_the_real_database_gives_what_its_events_one_at_a_time_give(
    engine: AsyncEngine,
) -> None:
    customer_ids = [new_customer_id() for _ in range(8)]
    now = datetime.now(UTC)
    story = interleaved_story(customer_ids, now)

    at_once = await applied(engine, [story], customer_ids, now)
    one_by_one = await applied(engine, [[event] for event in story], customer_ids, now)

    assert at_once == one_by_one
    assert len(at_once["customers"]) == 8
    # Four purchases each (one of them carried by two events) and a refund.
    assert len(at_once["activity"]) == 8 * 5
    assert {row[2] for row in at_once["history"]} == {"silver", "gold", "platinum"}
    assert len(at_once["outbox"]) == len(at_once["history"])


async def test_a_batch_delivered_again_under_new_event_ids_changes_nothing(
    engine: AsyncEngine,
) -> None:
    customer_ids = [new_customer_id() for _ in range(5)]
    now = datetime.now(UTC)
    story = interleaved_story(customer_ids, now)
    again = [event.model_copy(update={"id": str(uuid.uuid4())}) for event in story]

    once = await applied(engine, [story], customer_ids, now)
    twice = await applied(engine, [story, again], customer_ids, now)

    assert twice == once
    assert once["outbox"]


async def test_many_customers_events_sent_at_once_are_applied_as_one_by_one(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    customer_ids = [new_customer_id() for _ in range(40)]
    now = datetime.now(UTC)
    crossings: dict[str, CloudEvent] = {}
    batch: list[CloudEvent] = []
    for customer in customer_ids:
        crossings[customer] = purchase(customer, "250", now - timedelta(hours=1))
        batch += [
            purchase(customer, "300", now - timedelta(hours=2)),
            enrolled(customer, now - timedelta(days=3)),
            crossings[customer],
        ]
    await send_all(stack, batch)

    for customer in customer_ids:
        body = await wait_for_spend(client, customer, "550")
        assert (body["tier"], body["next_tier"]) == ("silver", "gold")
        assert datetime.fromisoformat(body["since"]) == now - timedelta(hours=1)

    async def every_change() -> dict[str, list[CloudEvent]] | None:
        found: dict[str, list[CloudEvent]] = {}
        for record in await read_all(stack.kafka, topics.TIERS):
            key = record.key.decode() if record.key else ""
            if key in crossings and record.value is not None:
                found.setdefault(key, []).append(CloudEvent.from_bytes(record.value))
        return found if len(found) == len(customer_ids) else None

    published = await eventually(every_change, within=WITHIN, what="40 tier.changed events")
    for customer, changes in published.items():
        [changed] = changes
        assert changed.id == derived_event_id(crossings[customer].id, "tier-changed")
        payload = events.TierChanged.model_validate(changed.data)
        assert (payload.from_tier, payload.to_tier) == ("bronze", "silver")


async def test_a_purchase_in_another_currency_is_dead_lettered_alone(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    refused_customer, other = new_customer_id(), new_customer_id()
    now = datetime.now(UTC)
    await send_all(
        stack,
        [
            purchase(other, "200", now - timedelta(hours=3)),
            purchase(refused_customer, "900", now - timedelta(hours=3), currency="USD"),
            purchase(other, "400", now - timedelta(hours=2)),
            purchase(refused_customer, "100", now - timedelta(hours=1)),
        ],
    )

    assert (await wait_for_spend(client, other, "600"))["tier"] == "silver"
    # The customer's later purchase waited behind the refused one, then counted alone.
    assert (await wait_for_spend(client, refused_customer, "100"))["tier"] == "bronze"

    async def dead_lettered_by_tiers() -> list[Any] | None:
        return (
            await dead_letters(
                stack.kafka,
                topics.PURCHASES,
                key=refused_customer,
                consumer="tiers",
            )
            or None
        )

    [dead] = await eventually(
        dead_lettered_by_tiers, within=WITHIN, what="the refused purchase dead-lettered"
    )
    assert dict(dead.headers)["fedelta-error"] == b"ValueError"
    assert (
        events.PurchaseCompleted.model_validate(CloudEvent.from_bytes(dead.value).data).currency
        == "USD"
    )


# -- the customers topic is compacted ----------------------------------------------------------


async def test_a_customer_known_only_by_their_latest_profile_is_enrolled(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    # What a fresh consumer of the compacted customers topic may find: no enrolment at all.
    customer = new_customer_id()
    enrolled_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)
    profile = events.CustomerUpdated(
        customer_id=customer, partner_id=PARTNER, enrolled_at=enrolled_at, version=4
    )
    await send(
        stack,
        new_event(profile, source=f"ingest/{PARTNER}", subject=customer, time=datetime.now(UTC)),
    )

    body = await wait_for_spend(client, customer, "0")
    assert body["tier"] == "bronze"
    assert datetime.fromisoformat(body["since"]) == enrolled_at
    assert datetime.fromisoformat(body["review_at"]) == enrolled_at + timedelta(days=365)
    assert await tier_changes(stack, customer) == []


# -- the calendar-year basis on the real database ----------------------------------------------


async def test_a_refund_is_stored_with_its_purchase_instant_within_and_across_batches(
    engine: AsyncEngine,
) -> None:
    program = Program(basis=SpendBasis.CALENDAR_YEAR, time_zone="Europe/Helsinki")
    customer = new_customer_id()
    bought_at = datetime(2025, 12, 31, 21, 30, tzinfo=UTC)  # 23:30 in Helsinki
    bought = purchase(customer, "600", bought_at)
    purchase_id = events.PurchaseCompleted.model_validate(bought.data).purchase_id
    same_batch = refund(customer, purchase_id, "100", bought_at + timedelta(days=3))
    later_batch = refund(customer, purchase_id, "100", bought_at + timedelta(days=5))
    handle = make_subscription(
        ProgramSource(program), FixedClock(bought_at + timedelta(days=9))
    ).handle
    async with engine.connect() as conn, conn.begin() as transaction:
        await handle(conn, [enrolled(customer, bought_at - timedelta(days=1)), bought, same_batch])
        await handle(conn, [later_batch])
        rows = await conn.execute(
            sa.select(qualifying_activity.c.activity_id, qualifying_activity.c.attributed_at)
            .where(qualifying_activity.c.customer_id == customer)
            .order_by(qualifying_activity.c.id)
        )
        attributed = [tuple(row) for row in rows]
        await transaction.rollback()
    assert [at for _, at in attributed] == [None, bought_at, bought_at]
