"""The liability report on the real PostgreSQL: per partner and in total, as of a date."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.messaging import events
from shared.messaging.events import CloudEvent, new_event
from tests.integration.points.support import NOW, apply
from tests.support.services import ADMIN, READER

pytestmark = pytest.mark.integration

ENROLLED = NOW - timedelta(days=2)
BOUGHT = NOW - timedelta(days=1)


def event(payload: events.Payload, customer: str) -> CloudEvent:
    return new_event(payload, source="ingest/test", subject=customer, time=NOW)


async def report(points: httpx.AsyncClient, as_of: datetime) -> dict[str, Any]:
    response = await points.get(
        "/v1/reports/liability", params={"as_of": as_of.isoformat()}, headers=ADMIN
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def of_partner(body: dict[str, Any], partner: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [p for p in body["partners"] if p["partner_id"] == partner]
    assert len(found) == 1
    return found[0]


async def test_the_liability_of_a_partner_follows_its_points_as_of_a_date(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    partner, customer = f"partner-{uuid.uuid4()}", f"c-{uuid.uuid4()}"
    enrolled = events.CustomerEnrolled(
        customer_id=customer, partner_id=partner, enrolled_at=ENROLLED
    )
    bought = events.PurchaseCompleted(
        purchase_id="p1",
        partner_id=partner,
        customer_id=customer,
        occurred_at=BOUGHT,
        currency="EUR",
        total=Decimal("100.00"),
    )
    refunded = events.PurchaseRefunded(
        refund_id="r1",
        purchase_id="p1",
        partner_id=partner,
        customer_id=customer,
        occurred_at=NOW - timedelta(minutes=1),
        amount=Decimal("50.00"),
    )
    await apply(engine, [event(enrolled, customer), event(bought, customer)])
    spent = await points.post(
        f"/v1/customers/{customer}/redemptions",
        json={"points": 30, "reward": "coffee"},
        headers=ADMIN,
    )
    assert spent.status_code == 201
    await apply(engine, [event(refunded, customer)])

    now = of_partner(await report(points, datetime.now(UTC) + timedelta(seconds=1)), partner)
    assert {k: now[k] for k in ("issued", "spent", "reversed", "expired", "outstanding")} == {
        "issued": 200,
        "spent": 30,
        "reversed": 50,
        "expired": 0,
        "outstanding": 120,
    }
    before_purchase = of_partner(await report(points, BOUGHT - timedelta(hours=1)), partner)
    assert (before_purchase["issued"], before_purchase["outstanding"]) == (100, 100)


async def test_the_total_adds_up_the_partners_and_readers_may_not_see_it(
    points: httpx.AsyncClient,
) -> None:
    body = await report(points, datetime.now(UTC))
    for field in ("issued", "spent", "expired", "reversed", "in_lots", "debt", "outstanding"):
        assert body["total"][field] == sum(p[field] for p in body["partners"])
    refused = await points.get("/v1/reports/liability", headers=READER)
    assert refused.status_code == 403


async def test_the_debt_a_refund_leaves_lowers_what_the_partner_owes(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """The points of a purchase were spent, then the purchase was refunded whole: the lots
    hold nothing of it, and the customer owes the partner 100 points back."""
    partner, customer = f"partner-{uuid.uuid4()}", f"c-{uuid.uuid4()}"
    await apply(
        engine,
        [
            event(
                events.CustomerEnrolled(
                    customer_id=customer, partner_id=partner, enrolled_at=ENROLLED
                ),
                customer,
            ),
            event(
                events.PurchaseCompleted(
                    purchase_id="p1",
                    partner_id=partner,
                    customer_id=customer,
                    occurred_at=BOUGHT,
                    currency="EUR",
                    total=Decimal("100.00"),
                ),
                customer,
            ),
        ],
    )
    spent = await points.post(
        f"/v1/customers/{customer}/redemptions",
        json={"points": 200, "reward": "everything"},
        headers=ADMIN,
    )
    assert spent.status_code == 201
    refunded = events.PurchaseRefunded(
        refund_id="r1",
        purchase_id="p1",
        partner_id=partner,
        customer_id=customer,
        occurred_at=NOW - timedelta(minutes=1),
        amount=Decimal("100.00"),
    )
    await apply(engine, [event(refunded, customer)])

    now = of_partner(await report(points, datetime.now(UTC) + timedelta(seconds=1)), partner)
    fields = ("issued", "spent", "reversed", "in_lots", "debt", "outstanding")
    assert {k: now[k] for k in fields} == {
        "issued": 200,
        "spent": 200,
        "reversed": 0,
        "in_lots": 0,
        "debt": 100,
        "outstanding": -100,
    }
