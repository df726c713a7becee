"""Points as tender on the real Kafka and PostgreSQL: a purchase names the redemption that paid
for part of it, its refunds give those points back in proportion to the lots they came from
(announced as points.earned), exactly once; a redemption pays for one purchase only."""

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.points.adapters.tables import allocations, ledger_entries, purchases
from services.points.domain.tender import RETURN_REASON
from shared.messaging import topics
from shared.messaging.events import CloudEvent
from tests.integration.points.support import NOW, apply, customer_with_lots
from tests.support import factories
from tests.support.kafka import events_for, publish
from tests.support.polling import eventually
from tests.support.services import ADMIN, READER
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def paid(customer: str, purchase_id: str, total: str, redemption_id: str | None) -> CloudEvent:
    return factories.purchase(
        customer,
        total,
        at=NOW,
        occurred_at=NOW - timedelta(minutes=5),
        purchase_id=purchase_id,
        partner_id="shop",
        redemption_id=redemption_id,
    )


def refunded(customer: str, purchase_id: str, refund_id: str, amount: str) -> CloudEvent:
    return factories.refund(
        customer,
        purchase_id,
        amount,
        refund_id=refund_id,
        at=NOW,
        occurred_at=NOW - timedelta(minutes=1),
        partner_id="shop",
    )


async def redeem(points: httpx.AsyncClient, customer: str, how_many: int) -> str:
    response = await points.post(
        f"/v1/customers/{customer}/redemptions",
        json={"points": how_many, "reward": "paid at the till"},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    redemption_id: str = response.json()["redemption_id"]
    return redemption_id


async def balance_of(points: httpx.AsyncClient, customer: str) -> dict[str, Any]:
    response = await points.get(f"/v1/customers/{customer}/balance", headers=READER)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_refund_through_kafka_gives_the_spent_points_back_once_in_proportion(
    stack: Stack, points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # 100 points expiring in 20 days, 400 in 300: the redemption takes all of the first.
    customer = await customer_with_lots(engine, (100, 20), (400, 300))
    redemption_id = await redeem(points, customer, 300)
    bootstrap = stack.kafka
    purchase_id = f"{customer}.p1"
    await publish(
        bootstrap, topics.PURCHASES, customer, paid(customer, purchase_id, "40.00", redemption_id)
    )
    half = refunded(customer, purchase_id, f"{customer}.r1", "20.00")
    await publish(bootstrap, topics.PURCHASES, customer, half)
    await publish(bootstrap, topics.PURCHASES, customer, half)  # redelivered
    await publish(
        bootstrap,
        topics.PURCHASES,
        customer,
        half.model_copy(update={"id": str(uuid.uuid4())}),  # the same refund, a new event
    )

    # 500 - 300 spent + 40 earned - 20 reversed + 150 given back.
    async def settled() -> dict[str, Any] | None:
        body = await balance_of(points, customer)
        return body if body["available"] == 370 else None

    balance = await eventually(settled, what="the refund's 150 points back")
    # Back to the soonest-expiring lot first, with its own expiry.
    assert [e["points"] for e in balance["next_expiries"]] == [100, 250, 20]

    async def returned() -> list[Any] | None:
        found = [
            e
            for e in await events_for(bootstrap, topics.POINTS, customer)
            if e.data.get("reason") == RETURN_REASON
        ]
        return found or None

    announced = await eventually(returned, what="points.earned for the points given back")
    assert [(e.data["points"], e.data.get("purchase_id")) for e in announced] == [
        (100, None),
        (50, None),
    ]
    async with engine.connect() as conn:
        linked = await conn.scalar(
            sa.select(purchases.c.redemption_id).where(
                purchases.c.purchase_key == f"shop:{purchase_id}"
            )
        )
        given = await conn.execute(
            sa.select(allocations.c.lot_id, allocations.c.points).where(
                allocations.c.entry_id == f"tender:shop:{customer}.r1"
            )
        )
        assert sorted(tuple(row) for row in given) == [
            (f"{customer}/lot0", -100),
            (f"{customer}/lot1", -50),
        ]
    assert linked == redemption_id


async def test_a_redemption_pays_for_one_purchase_of_its_own_customer_only(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (200, 100))
    other = await customer_with_lots(engine, (200, 100))
    redemption_id = await redeem(points, customer, 50)

    await apply(
        engine,
        [
            paid(customer, f"{customer}.p1", "10.00", redemption_id),
            paid(customer, f"{customer}.p2", "10.00", redemption_id),
            paid(other, f"{other}.p3", "10.00", redemption_id),
            paid(customer, f"{customer}.p4", "10.00", f"nowhere-{uuid.uuid4()}"),
        ],
    )
    await apply(engine, [paid(customer, f"{customer}.p5", "10.00", redemption_id)])

    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(purchases.c.purchase_id, purchases.c.redemption_id).where(
                purchases.c.customer_id.in_([customer, other])
            )
        )
        links = dict(tuple(row) for row in rows)
    assert links == {
        f"{customer}.p1": redemption_id,
        f"{customer}.p2": None,
        f"{other}.p3": None,
        f"{customer}.p4": None,
        f"{customer}.p5": None,
    }
    # And the database itself refuses a second purchase for one redemption.
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(purchases)
                .where(purchases.c.purchase_key == f"shop:{customer}.p2")
                .values(redemption_id=redemption_id)
            )


async def test_a_captured_hold_paying_for_a_purchase_is_given_back_by_its_refund(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (300, 100))
    placed = await points.post(
        f"/v1/customers/{customer}/holds",
        json={"points": 120, "reward": "paid at the till"},
        headers=ADMIN,
    )
    assert placed.status_code == 201, placed.text
    hold_id = placed.json()["hold_id"]
    captured = await points.post(f"/v1/holds/{hold_id}/capture", headers=ADMIN)
    assert captured.status_code == 200, captured.text

    await apply(engine, [paid(customer, f"{customer}.p1", "12.00", hold_id)])
    await apply(engine, [refunded(customer, f"{customer}.p1", f"{customer}.r1", "12.00")])

    async with engine.connect() as conn:
        given_back = await conn.scalar(
            sa.select(ledger_entries.c.points).where(
                ledger_entries.c.entry_id == f"tender:shop:{customer}.r1"
            )
        )
    assert given_back == 120
    assert (await balance_of(points, customer))["available"] == 300


async def test_every_lot_names_the_partner_that_issued_it(engine: AsyncEngine) -> None:
    referrer, customer = f"c-{uuid.uuid4()}", f"c-{uuid.uuid4()}"
    await apply(
        engine,
        [
            factories.enrolment(referrer, at=NOW, partner_id="p-a"),
            factories.enrolment(customer, at=NOW, partner_id="p-b", referred_by=referrer),
            factories.purchase(
                customer, "10.00", at=NOW, purchase_id=f"{customer}.p1", partner_id="p-c"
            ),
        ],
    )

    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(
                ledger_entries.c.customer_id, ledger_entries.c.reason, ledger_entries.c.partner_id
            ).where(ledger_entries.c.customer_id.in_([referrer, customer]))
        )
        issuers = {(row.customer_id, row.reason): row.partner_id for row in rows}
    assert issuers == {
        (referrer, "welcome"): "p-a",
        (customer, "welcome"): "p-b",
        (customer, "purchase"): "p-c",
        (referrer, "referral"): "p-c",
    }
