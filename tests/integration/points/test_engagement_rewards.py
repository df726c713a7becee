"""Engagement's rewards in points on the real Kafka and PostgreSQL (issue 20): published by the
stack's admin with engagement's source, a grant earns once whatever carries it, a revocation
takes it back once (what was spent becomes debt the next earning repays), a revocation before
its grant leaves it uncredited, a grant of a catalogue's reward is one gift coupon (no points
spent) a till takes once and its revocation voids while unused, and one of a reward the
catalogue does not know is dead-lettered alone. On the database alone: a grant and its
revocation applied at once by two consumers (a rebalance) never leave the grant credited and
not taken back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.points.adapters.repositories.consumer import consumer_repository
from services.points.adapters.tables import coupons, ledger_entries
from services.points.domain.model import Program
from services.points.handlers import Context, apply_batch
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from tests.integration.points import support
from tests.support import factories
from tests.support.database import engine_for
from tests.support.kafka import dead_letters, events_for, publish
from tests.support.polling import eventually
from tests.support.services import ADMIN, READER
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
REASON = "stamp card: Coffee card"  # the factory's default reason and rule name


def granted(customer: str, grant_id: str, points: int | None, **fields: Any) -> CloudEvent:
    return factories.engagement_rewarded(
        customer, grant_id=grant_id, points=points, at=NOW, **fields
    )


def revoked(customer: str, grant_id: str, refund_id: str | None = None) -> CloudEvent:
    return factories.engagement_reward_revoked(customer, grant_id, refund_id=refund_id, at=NOW)


async def enrolled(stack: Stack, points: httpx.AsyncClient) -> str:
    """A new member with the welcome bonus (100)."""
    customer = f"c-{uuid.uuid4()}"
    await publish(stack.kafka, topics.CUSTOMERS, customer, factories.enrolment(customer, at=NOW))
    await until_balance(points, customer, 100, 0)
    return customer


async def until_balance(
    points: httpx.AsyncClient, customer: str, available: int, debt: int
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await points.get(f"/v1/customers/{customer}/balance", headers=READER)
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body if (body["available"], body["debt"]) == (available, debt) else None

    return await eventually(probe, what=f"{available} points available, {debt} owed")


async def send(stack: Stack, customer: str, *batch: CloudEvent) -> None:
    for event in batch:
        await publish(stack.kafka, topics.ENGAGEMENT, customer, event)


async def of_type(stack: Stack, customer: str, event_type: str) -> list[CloudEvent]:
    return [
        e for e in await events_for(stack.kafka, topics.POINTS, customer) if e.type == event_type
    ]


async def once_published(
    stack: Stack, customer: str, event_type: str, last: Callable[[CloudEvent], bool]
) -> list[CloudEvent]:
    """The customer's events of the type once the relay published the one `last` picks (the
    newest the test caused: any duplicate came before it)."""

    async def probe() -> list[CloudEvent] | None:
        found = await of_type(stack, customer, event_type)
        return found if any(last(e) for e in found) else None

    return await eventually(probe, what=f"{event_type} published")


async def test_a_grant_earns_once_and_its_revocation_takes_it_back_once(
    stack: Stack, points: httpx.AsyncClient
) -> None:
    customer = await enrolled(stack, points)
    grant = granted(customer, f"g-{uuid.uuid4()}", 50, purchase_id="p-1")
    await send(stack, customer, grant)
    await until_balance(points, customer, 150, 0)

    # The same grant again, under a new event id, then a marker grant behind it.
    again = grant.model_copy(update={"id": str(uuid.uuid4())})
    await send(stack, customer, again, granted(customer, f"g-{uuid.uuid4()}", 7))
    await until_balance(points, customer, 157, 0)
    earned = [
        e.data_as(events.PointsEarned)
        for e in await once_published(
            stack, customer, events.POINTS_EARNED, lambda e: e.data["points"] == 7
        )
        if e.data["reason"] == REASON
    ]
    assert sorted(e.points for e in earned) == [7, 50]
    assert [e.purchase_id for e in earned if e.points == 50] == ["p-1"]

    # Spend most of it: taking the grant back leaves debt.
    spent = await points.post(
        f"/v1/customers/{customer}/redemptions",
        json={"points": 140, "reward": "voucher"},
        headers={**ADMIN, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert spent.status_code == 201, spent.text
    grant_id = grant.data["grant_id"]
    await send(stack, customer, revoked(customer, grant_id, refund_id="r-9"))
    await until_balance(points, customer, 0, 33)

    # Revoked again (a new event), then a grant that repays the debt first.
    await send(
        stack, customer, revoked(customer, grant_id), granted(customer, f"g-{uuid.uuid4()}", 40)
    )
    await until_balance(points, customer, 7, 0)
    await once_published(stack, customer, events.POINTS_EARNED, lambda e: e.data["points"] == 40)
    reversed_ = [
        e.data_as(events.PointsReversed)
        for e in await of_type(stack, customer, events.POINTS_REVERSED)
    ]
    assert [(r.points, r.refund_id) for r in reversed_] == [(50, "r-9")]


async def test_a_grant_revoked_before_it_came_is_never_credited(
    stack: Stack, points: httpx.AsyncClient
) -> None:
    customer = await enrolled(stack, points)
    grant_id = f"g-{uuid.uuid4()}"
    await send(
        stack,
        customer,
        revoked(customer, grant_id),
        granted(customer, grant_id, 60),
        granted(customer, f"g-{uuid.uuid4()}", 5),  # the marker
    )
    await until_balance(points, customer, 105, 0)
    assert await of_type(stack, customer, events.POINTS_REVERSED) == []


async def test_a_grant_of_an_unknown_reward_is_dead_lettered_and_the_next_one_earns(
    stack: Stack, points: httpx.AsyncClient
) -> None:
    customer = await enrolled(stack, points)
    await send(
        stack,
        customer,
        granted(customer, f"g-{uuid.uuid4()}", None, reward_id="rw-coffee"),
        granted(customer, f"g-{uuid.uuid4()}", 25),
    )
    await until_balance(points, customer, 125, 0)

    async def dead_lettered() -> list[Any] | None:
        found = await dead_letters(stack.kafka, topics.ENGAGEMENT, key=customer, consumer="points")
        return found or None

    [dead] = await eventually(dead_lettered, what="the coupon grant dead-lettered by points")
    assert dict(dead.headers)["fedelta-error"] == b"CouponGrantRefused"
    assert CloudEvent.from_bytes(dead.value).data["reward_id"] == "rw-coffee"
    assert await of_type(stack, customer, events.COUPON_ISSUED) == []


async def a_reward(points: httpx.AsyncClient, **fields: Any) -> str:
    body = {"name": "Free coffee", "points_cost": 300, "kind": "item", **fields}
    created = await points.post("/v1/rewards", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    reward_id: str = created.json()["id"]
    return reward_id


async def coupons_of(points: httpx.AsyncClient, customer: str) -> list[dict[str, Any]]:
    response = await points.get(f"/v1/customers/{customer}/coupons", headers=READER)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["coupons"]
    return found


async def given_a_coupon(
    stack: Stack, points: httpx.AsyncClient, customer: str, reward_id: str, grant_id: str
) -> dict[str, Any]:
    """The gift granted, twice (two events), then a marker grant of 7 points behind them: once
    the marker is in, both copies were applied. The member's one coupon."""
    gift = granted(customer, grant_id, None, reward_id=reward_id)
    again = gift.model_copy(update={"id": str(uuid.uuid4())})
    await send(stack, customer, gift, again, granted(customer, f"g-{uuid.uuid4()}", 7))
    await until_balance(points, customer, 107, 0)
    [coupon] = await coupons_of(points, customer)
    return coupon


async def redeem_coupon(points: httpx.AsyncClient, code: str) -> httpx.Response:
    return await points.post(
        f"/v1/coupons/{code}/redeem",
        json={"store_id": "s-1"},
        headers={**ADMIN, "Idempotency-Key": str(uuid.uuid4())},
    )


async def test_a_gift_is_one_coupon_spending_nothing_that_a_till_takes_once(
    stack: Stack, points: httpx.AsyncClient
) -> None:
    reward_id = await a_reward(points, stock=10)
    customer = await enrolled(stack, points)
    grant_id = f"g-{uuid.uuid4()}"
    coupon = await given_a_coupon(stack, points, customer, reward_id, grant_id)
    assert (coupon["points"], coupon["grant_id"], coupon["redemption_id"]) == (
        0,
        grant_id,
        grant_id,
    )
    assert (coupon["status"], coupon["reward"], coupon["revoked_at"]) == (
        "issued",
        "Free coffee",
        None,
    )
    reward = await points.get(f"/v1/rewards/{reward_id}", headers=ADMIN)
    assert reward.json()["redeemed"] == 1

    [issued] = [
        e.data_as(events.CouponIssued)
        for e in await once_published(
            stack, customer, events.COUPON_ISSUED, lambda e: e.data["grant_id"] == grant_id
        )
    ]
    assert (issued.coupon_id, issued.points, issued.reward_id) == (
        coupon["coupon_id"],
        0,
        reward_id,
    )
    assert await of_type(stack, customer, events.POINTS_REDEEMED) == []

    taken = await redeem_coupon(points, coupon["code"])
    assert taken.status_code == 200, taken.text
    assert taken.json()["status"] == "redeemed"
    again = await redeem_coupon(points, coupon["code"])
    assert again.status_code == 409, again.text
    await until_balance(points, customer, 107, 0)  # nothing spent, nothing owed


async def test_a_revoked_gift_voids_its_unused_coupon_which_no_till_can_take(
    stack: Stack, points: httpx.AsyncClient
) -> None:
    reward_id = await a_reward(points)
    customer = await enrolled(stack, points)
    grant_id = f"g-{uuid.uuid4()}"
    coupon = await given_a_coupon(stack, points, customer, reward_id, grant_id)
    await send(
        stack, customer, revoked(customer, grant_id), granted(customer, f"g-{uuid.uuid4()}", 3)
    )
    await until_balance(points, customer, 110, 0)
    [voided] = await coupons_of(points, customer)
    assert (voided["status"], voided["revoked_at"] is not None) == ("voided", True)
    refused = await redeem_coupon(points, coupon["code"])
    assert refused.status_code == 410, refused.text
    assert refused.json()["type"].endswith(":coupon-voided")
    assert await of_type(stack, customer, events.POINTS_REVERSED) == []


async def test_a_gift_used_before_its_revocation_stays_used_and_makes_no_debt(
    stack: Stack, points: httpx.AsyncClient
) -> None:
    reward_id = await a_reward(points)
    customer = await enrolled(stack, points)
    grant_id = f"g-{uuid.uuid4()}"
    coupon = await given_a_coupon(stack, points, customer, reward_id, grant_id)
    assert (await redeem_coupon(points, coupon["code"])).status_code == 200
    await send(
        stack, customer, revoked(customer, grant_id), granted(customer, f"g-{uuid.uuid4()}", 3)
    )
    await until_balance(points, customer, 110, 0)
    [used] = await coupons_of(points, customer)
    assert (used["status"], used["revoked_at"] is not None) == ("redeemed", True)


@pytest.fixture
async def wide_engine(stack: Stack, points: httpx.AsyncClient) -> AsyncIterator[AsyncEngine]:
    """Three connections at once: the open transaction, the waiting one, and the probe."""
    async with engine_for(stack, "points", pool_size=4) as engine:
        yield engine


async def waiting_on_a_lock(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        waiting = await conn.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE '%engagement_grants%'"
            )
        )
    return bool(waiting)


async def applied_while_the_other_is_open(
    engine: AsyncEngine, first: CloudEvent, second: CloudEvent
) -> CollectingSink:
    """`first` applied in a transaction left open until `second`, in another, waits on it;
    then `first` commits and `second` completes: what `second` emitted."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        context = Context(
            ledger=consumer_repository(conn),
            sink=CollectingSink(),
            program=Program(),
            now=support.NOW,
        )
        await apply_batch([first], context)
        other = asyncio.create_task(support.apply(engine, [second]))
        await eventually(lambda: waiting_on_a_lock(engine), what="the second one waiting")
        assert not other.done()
        await transaction.commit()
    return await asyncio.wait_for(other, timeout=30)


async def entries_of(engine: AsyncEngine, customer: str) -> list[tuple[str, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(ledger_entries.c.entry_id, ledger_entries.c.points)
            .where(ledger_entries.c.customer_id == customer)
            .order_by(ledger_entries.c.seq)
        )
        return [(row.entry_id, row.points) for row in rows]


async def test_a_revocation_applied_while_its_grant_is_waits_and_takes_it_back(
    wide_engine: AsyncEngine,
) -> None:
    engine = wide_engine
    customer, grant_id = f"c-{uuid.uuid4()}", f"g-{uuid.uuid4()}"
    sink = await applied_while_the_other_is_open(
        engine, granted(customer, grant_id, 30), revoked(customer, grant_id)
    )
    assert [e.data["points"] for _, _, e in sink.events] == [30]  # the points.reversed
    assert await entries_of(engine, customer) == [
        (f"engagement:{grant_id}", 30),
        (f"engagement-revoked:{grant_id}", -30),
    ]


async def test_a_grant_applied_while_its_revocation_is_waits_and_is_not_credited(
    wide_engine: AsyncEngine,
) -> None:
    engine = wide_engine
    customer, grant_id = f"c-{uuid.uuid4()}", f"g-{uuid.uuid4()}"
    sink = await applied_while_the_other_is_open(
        engine, revoked(customer, grant_id), granted(customer, grant_id, 30)
    )
    assert sink.events == []
    assert await entries_of(engine, customer) == []


async def gift_coupon_state(engine: AsyncEngine, grant_id: str) -> list[tuple[str, bool]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(coupons.c.status, coupons.c.revoked_at).where(coupons.c.grant_id == grant_id)
        )
        return [(row.status, row.revoked_at is not None) for row in rows]


async def test_a_gift_revoked_while_it_is_issued_waits_and_voids_its_coupon(
    wide_engine: AsyncEngine, points: httpx.AsyncClient
) -> None:
    reward_id = await a_reward(points)
    customer, grant_id = f"c-{uuid.uuid4()}", f"g-{uuid.uuid4()}"
    sink = await applied_while_the_other_is_open(
        wide_engine,
        granted(customer, grant_id, None, reward_id=reward_id),
        revoked(customer, grant_id),
    )
    assert sink.events == []
    assert await gift_coupon_state(wide_engine, grant_id) == [("voided", True)]


async def test_a_gift_applied_while_its_revocation_is_waits_and_gives_nothing(
    wide_engine: AsyncEngine, points: httpx.AsyncClient
) -> None:
    reward_id = await a_reward(points)
    customer, grant_id = f"c-{uuid.uuid4()}", f"g-{uuid.uuid4()}"
    sink = await applied_while_the_other_is_open(
        wide_engine,
        revoked(customer, grant_id),
        granted(customer, grant_id, None, reward_id=reward_id),
    )
    assert sink.events == []
    assert await gift_coupon_state(wide_engine, grant_id) == []


async def test_a_grant_revoked_twice_in_one_batch_is_taken_back_once(engine: AsyncEngine) -> None:
    customer, grant_id = f"c-{uuid.uuid4()}", f"g-{uuid.uuid4()}"
    sink = await support.apply(
        engine,
        [
            granted(customer, grant_id, 20),
            revoked(customer, grant_id, refund_id="r-1"),
            revoked(customer, grant_id, refund_id="r-2"),
        ],
    )
    reversed_ = [e.data for _, _, e in sink.events if e.type == events.POINTS_REVERSED]
    assert [(r["points"], r["refund_id"]) for r in reversed_] == [(20, "r-1")]
    again = await support.apply(engine, [revoked(customer, grant_id, refund_id="r-3")])
    assert again.events == []
