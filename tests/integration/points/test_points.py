"""Points on the real PostgreSQL and Kafka: consume contract events, answer balances."""

import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.points.adapters.tables import customer_tiers, customers, ledger_entries, outbox
from services.points.api.app import create_app
from services.points.bootstrap import make_subscription
from services.points.domain.model import Program
from services.points.settings import PointsSettings
from shared.clock import FixedClock
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent, derived_event_id, new_event
from shared.messaging.kafka import KafkaConnection, client_options
from tests.support import factories
from tests.support.kafka import dead_letters, events_for, provision_partners, publish
from tests.support.polling import eventually
from tests.support.services import READER, running, settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def enrolment(customer_id: str) -> CloudEvent:
    return factories.enrolment(customer_id, at=NOW)


def purchase(
    customer_id: str, total: str, purchase_id: str | None = None, currency: str = "EUR"
) -> CloudEvent:
    return factories.purchase(
        customer_id, total, at=NOW, purchase_id=purchase_id or str(uuid.uuid4()), currency=currency
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
    bootstrap = stack.kafka
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


async def test_the_latest_profile_alone_enrols_after_compaction(
    stack: Stack, points: httpx.AsyncClient
) -> None:
    """A compacted customers topic may hold only a customer's latest customer.updated."""
    customer = f"c-{uuid.uuid4()}"
    latest = new_event(
        events.CustomerUpdated(customer_id=customer, partner_id="demo", enrolled_at=NOW),
        source="ingest/demo",
        subject=customer,
        time=NOW,
    )
    await publish(stack.kafka, topics.CUSTOMERS, customer, latest)
    balance = await eventually(lambda: balance_once(points, customer, 100), what="welcome bonus")
    assert balance["lifetime_earned"] == 100


async def test_a_redelivered_event_changes_nothing(stack: Stack, points: httpx.AsyncClient) -> None:
    customer = f"c-{uuid.uuid4()}"
    bootstrap = stack.kafka
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
    bootstrap = stack.kafka
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


async def _n_events(
    bootstrap: str | KafkaConnection, customer: str, count: int
) -> list[CloudEvent] | None:
    found = await events_for(bootstrap, topics.POINTS, customer)
    return found if len(found) >= count else None


async def test_two_instances_share_the_partitions_without_double_effects(
    stack: Stack, points: httpx.AsyncClient
) -> None:
    """Scale-out: a second instance joins the group mid-stream; the rebalance may redeliver,
    and every balance must still be exact with exactly one points.earned per purchase."""
    bootstrap = stack.kafka
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


# -- the batch path ---------------------------------------------------------------------------


def tier_change(customer_id: str, to_tier: events.TierName, effective_at: datetime) -> CloudEvent:
    return new_event(
        events.TierChanged(
            customer_id=customer_id,
            from_tier="bronze",
            to_tier=to_tier,
            direction="up",
            reason="qualifying_spend",
            effective_at=effective_at,
            review_at=effective_at + timedelta(days=365),
        ),
        source="tiers",
        subject=customer_id,
        time=effective_at,
    )


def with_new_id(event: CloudEvent) -> CloudEvent:
    return event.model_copy(update={"id": str(uuid.uuid4())})


def interleaved_story(customer_ids: list[str], *, tiers: bool = True) -> list[CloudEvent]:
    """Each customer's events in their order, the customers interleaved as one poll of
    several partitions returns them: an enrolment and the same enrolment again, a purchase
    and the same purchase under another event id, a purchase worth no point, tier changes
    arriving out of order (gold, effective last, wins), a later purchase (at gold: 250.99 *
    1.5 = 376 points). Without `tiers`, the tier changes are left out: sent through Kafka they
    travel on their own topic, in no defined order with the purchases."""
    stories = []
    for customer in customer_ids:
        first_purchase = purchase(customer, "300.00")
        first_enrolment = enrolment(customer)
        stories.append(
            [
                first_enrolment,
                first_purchase,
                with_new_id(first_purchase),
                tier_change(customer, "gold", NOW - timedelta(hours=1)),
                purchase(customer, "0.50"),
                with_new_id(first_enrolment),
                tier_change(customer, "silver", NOW - timedelta(hours=2)),
                purchase(customer, "250.99"),
            ]
        )
        if not tiers:
            stories[-1] = [e for e in stories[-1] if e.type != events.TIER_CHANGED]
    return [story[i] for i in range(len(stories[0])) for story in stories]


async def points_state(conn: AsyncConnection, customer_ids: list[str]) -> dict[str, Any]:
    """Everything points stores about these customers, and the events it would publish."""
    ledger = await conn.execute(
        # Every column but `seq`: the same entries, told apart by their order alone.
        sa.select(*(column for column in ledger_entries.c if column.name != "seq"))
        .where(ledger_entries.c.customer_id.in_(customer_ids))
        .order_by(ledger_entries.c.seq)
    )
    known = await conn.execute(
        sa.select(customers).where(customers.c.customer_id.in_(customer_ids))
    )
    tiers = await conn.execute(
        sa.select(customer_tiers).where(customer_tiers.c.customer_id.in_(customer_ids))
    )
    published = await conn.execute(
        sa.select(outbox.c.key, outbox.c.event_id, outbox.c.topic, outbox.c.payload)
        .where(outbox.c.key.in_(customer_ids))
        .order_by(outbox.c.id)
    )
    return {
        # Per customer, in the order it happened (customers interleave differently).
        "ledger": sorted((tuple(row) for row in ledger), key=lambda row: str(row[1])),
        "customers": sorted(tuple(row) for row in known),
        "tiers": sorted(tuple(row) for row in tiers),
        "outbox": sorted((tuple(row) for row in published), key=lambda row: str(row[0])),
    }


async def applied(
    engine: AsyncEngine, batches: list[list[CloudEvent]], customer_ids: list[str]
) -> dict[str, Any]:
    """The state the batch handler leaves after these batches, in one transaction that is
    rolled back: the test leaves nothing behind for the running relay to publish."""
    handle = make_subscription(Program(), FixedClock(NOW)).handle
    async with engine.connect() as conn, conn.begin() as transaction:
        for batch in batches:
            await handle(conn, batch)
        state = await points_state(conn, customer_ids)
        await transaction.rollback()
    return state


async def test_a_batch_on_the_real_database_gives_what_its_events_one_at_a_time_give(
    engine: AsyncEngine,
) -> None:
    customer_ids = [f"c-{uuid.uuid4()}" for _ in range(25)]
    story = interleaved_story(customer_ids)

    at_once = await applied(engine, [story], customer_ids)
    one_by_one = await applied(engine, [[event] for event in story], customer_ids)

    assert at_once == one_by_one
    assert len(at_once["customers"]) == 25
    # Each customer: the welcome bonus, then the purchases in the order they came.
    assert [row[3] for row in at_once["ledger"][:3]] == [100, 300, 376]
    assert len(at_once["ledger"]) == len(at_once["outbox"]) == 25 * 3
    assert {row[1] for row in at_once["tiers"]} == {"gold"}
    payloads = [events.PointsEarned.model_validate(row[3]["data"]) for row in at_once["outbox"]]
    assert sum(p.points for p in payloads) == 25 * 776
    assert payloads[-1].rule_ids == ["base", "tier:gold"]


async def test_a_batch_delivered_again_under_new_event_ids_changes_nothing(
    engine: AsyncEngine,
) -> None:
    customer_ids = [f"c-{uuid.uuid4()}" for _ in range(10)]
    story = interleaved_story(customer_ids)
    again = [with_new_id(event) for event in story]

    once = await applied(engine, [story], customer_ids)
    twice = await applied(engine, [story, again, story[7:]], customer_ids)

    assert twice == once
    assert len(once["outbox"]) == 10 * 3


async def send_all(stack: Stack, batch: list[CloudEvent]) -> None:
    """Every event with one producer, flushed once: they reach the consumer in few polls."""
    await provision_partners(stack.kafka, batch)
    producer = AIOKafkaProducer(**client_options(stack.kafka), acks="all")
    await producer.start()
    try:
        for event in batch:
            await producer.send(event.topic, value=event.to_bytes(), key=event.subject.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def test_many_customers_events_sent_at_once_earn_as_one_by_one(
    stack: Stack, points: httpx.AsyncClient
) -> None:
    customer_ids = [f"c-{uuid.uuid4()}" for _ in range(60)]
    story = interleaved_story(customer_ids, tiers=False)
    await send_all(stack, story)

    for customer in customer_ids:
        balance = await eventually(
            partial(balance_once, points, customer, 650), what=f"650 points for {customer}"
        )
        assert balance["lifetime_earned"] == 650

    announced = {event.id for event in story}
    bootstrap = stack.kafka
    for customer in customer_ids[:5]:
        earned = await eventually(
            partial(_n_events, bootstrap, customer, 3), what="three points.earned events"
        )
        assert sorted(e.data["points"] for e in earned) == [100, 250, 300]
        # Ids derived from the events that caused them: a replay re-emits, not duplicates.
        assert all(
            any(e.id == derived_event_id(cause, "points-earned") for cause in announced)
            for e in earned
        )


async def test_a_purchase_in_another_currency_is_dead_lettered_alone(
    stack: Stack, points: httpx.AsyncClient
) -> None:
    refused_customer, other = f"c-{uuid.uuid4()}", f"c-{uuid.uuid4()}"
    await send_all(
        stack,
        [
            purchase(other, "20.00"),
            purchase(refused_customer, "90.00", currency="USD"),
            purchase(other, "40.00"),
            purchase(refused_customer, "10.00"),
        ],
    )

    await eventually(lambda: balance_once(points, other, 60), what="the other purchases")
    # The customer's later purchase waited behind the refused one, then earned alone.
    await eventually(lambda: balance_once(points, refused_customer, 10), what="the later one")

    async def dead_lettered_by_points() -> list[Any] | None:
        found = await dead_letters(
            stack.kafka, topics.PURCHASES, key=refused_customer, consumer="points"
        )
        return found or None

    [dead] = await eventually(dead_lettered_by_points, what="the refused purchase dead-lettered")
    assert dict(dead.headers)["fedelta-error"] == b"ValueError"
    refused = events.PurchaseCompleted.model_validate(CloudEvent.from_bytes(dead.value).data)
    assert refused.currency == "USD"
