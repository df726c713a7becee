"""Earning by the formula and the campaign API on the real PostgreSQL and Kafka."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from services.points.adapters.tables import customer_tiers
from services.points.domain.model import add_months
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent, new_event
from shared.messaging.kafka import KafkaConnection
from shared.storage.db import create_engine
from tests.support import factories
from tests.support.kafka import events_for, publish
from tests.support.polling import eventually
from tests.support.services import ADMIN, READER
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


def _instant(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def campaign_body(**fields: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "double points on coffee",
        # A partner no other test buys at: a campaign of these tests touches no one else's.
        "partner_id": f"p-{uuid.uuid4().hex[:12]}",
        "multiplier": "2",
        "category": "coffee",
        "starts_at": _instant(NOW - timedelta(days=1)),
        "ends_at": _instant(NOW + timedelta(days=1)),
    }
    body.update(fields)
    return body


def silver(customer_id: str) -> CloudEvent:
    return new_event(
        events.TierChanged(
            customer_id=customer_id,
            from_tier="bronze",
            to_tier="silver",
            direction="up",
            reason="qualifying_spend",
            effective_at=NOW - timedelta(hours=1),
            review_at=NOW + timedelta(days=365),
        ),
        source="tiers",
        subject=customer_id,
        time=NOW,
    )


def coffee_and_bread(customer_id: str, partner_id: str) -> CloudEvent:
    """Two coffees at 5.00 and a bread at 20.00, sold for 30.00."""
    return factories.purchase(
        customer_id,
        "30.00",
        at=NOW,
        purchase_id=str(uuid.uuid4()),
        partner_id=partner_id,
        store_id="s1",
        items=[
            events.PurchaseItem(
                sku="esp", category="coffee", quantity=Decimal(2), unit_price=Decimal(5)
            ),
            events.PurchaseItem(
                sku="rye", category="bread", quantity=Decimal(1), unit_price=Decimal(20)
            ),
        ],
    )


async def test_a_silver_customer_earns_double_on_coffee_with_the_rules_recorded(
    stack: Stack, points: httpx.AsyncClient
) -> None:
    customer = f"c-{uuid.uuid4()}"
    # A partner of its own, so that campaigns of other tests cannot touch this purchase.
    partner = f"p-{uuid.uuid4().hex[:12]}"
    bootstrap = stack.kafka
    created = await points.post(
        "/v1/campaigns", json=campaign_body(partner_id=partner, validity_days=60), headers=ADMIN
    )
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]

    # Tiers and purchases travel on two topics: the purchase goes once the tier is known.
    await publish(bootstrap, topics.TIERS, customer, silver(customer))
    engine = create_engine(stack.database_url("points"), pool_size=1)
    try:

        async def tier_known() -> str | None:
            async with engine.connect() as conn:
                return await conn.scalar(
                    sa.select(customer_tiers.c.tier).where(customer_tiers.c.customer_id == customer)
                )

        assert await eventually(tier_known, what="the silver tier") == "silver"
    finally:
        await engine.dispose()
    await publish(bootstrap, topics.PURCHASES, customer, coffee_and_bread(customer, partner))

    async def entries() -> list[dict[str, Any]] | None:
        response = await points.get(f"/v1/customers/{customer}/ledger", headers=READER)
        if response.status_code != 200 or len(response.json()["entries"]) < 2:
            return None
        found: list[dict[str, Any]] = response.json()["entries"]
        return found

    # coffee 10 * 1.25 * 2 = 25, bread 20 * 1.25 = 25: 50 in all, 37 of them without the
    # campaign (37.5 rounded down). The campaign's 60 days are for its own 13 points only.
    campaign_lot, purchase_lot = await eventually(entries, what="the purchase's two lots")
    assert (purchase_lot["points"], purchase_lot["rule_ids"]) == (37, ["base", "tier:silver"])
    assert purchase_lot["expires_at"] == _instant(add_months(NOW, 12))
    assert (campaign_lot["points"], campaign_lot["rule_ids"]) == (13, [f"campaign:{campaign_id}"])
    assert campaign_lot["expires_at"] == _instant(NOW + timedelta(days=60))

    async def two_events() -> list[CloudEvent] | None:
        found = await _events(bootstrap, customer)
        return found if found and len(found) >= 2 else None

    announced = await eventually(two_events, what="the two points.earned events")
    earned = sorted(
        (data.points, data.rule_ids)
        for data in (event.data_as(events.PointsEarned) for event in announced)
    )
    assert earned == [(13, [f"campaign:{campaign_id}"]), (37, ["base", "tier:silver"])]


async def _events(bootstrap: str | KafkaConnection, customer: str) -> list[CloudEvent] | None:
    found = await events_for(bootstrap, topics.POINTS, customer)
    return found or None


async def test_campaigns_are_created_read_changed_and_deleted_by_an_admin(
    points: httpx.AsyncClient,
) -> None:
    body = campaign_body(bonus=50, store_id="s9", validity_days=30)
    created = await points.post("/v1/campaigns", json=body, headers=ADMIN)
    assert created.status_code == 201
    answer = created.json()
    campaign_id = answer.pop("id")
    assert answer == body

    path = f"/v1/campaigns/{campaign_id}"
    assert (await points.get(path, headers=ADMIN)).json() == {"id": campaign_id, **body}
    listed = (await points.get("/v1/campaigns", headers=ADMIN)).json()["items"]
    assert {"id": campaign_id, **body} in listed

    changed = await points.patch(path, json={"multiplier": "1.5", "store_id": None}, headers=ADMIN)
    assert changed.status_code == 200
    assert changed.json() == {"id": campaign_id, **body, "multiplier": "1.5", "store_id": None}
    assert (await points.get(path, headers=ADMIN)).json()["multiplier"] == "1.5"

    deleted = await points.delete(path, headers=ADMIN)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert (await points.get(path, headers=ADMIN)).status_code == 404


async def test_a_keyed_campaign_post_retried_creates_one_campaign(
    points: httpx.AsyncClient,
) -> None:
    headers = {**ADMIN, "Idempotency-Key": str(uuid.uuid4())}
    body = campaign_body()
    first = await points.post("/v1/campaigns", json=body, headers=headers)
    again = await points.post("/v1/campaigns", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    listed = (await points.get("/v1/campaigns", headers=ADMIN)).json()["items"]
    assert [c["id"] for c in listed if c["partner_id"] == body["partner_id"]] == [
        first.json()["id"]
    ]
    other = await points.post("/v1/campaigns", json=campaign_body(), headers=headers)
    assert other.status_code == 409  # the same key for another campaign


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/campaigns"),
        ("GET", "/v1/campaigns"),
        ("GET", "/v1/campaigns/any"),
        ("PATCH", "/v1/campaigns/any"),
        ("DELETE", "/v1/campaigns/any"),
    ],
)
async def test_campaigns_need_the_admin_scope(
    points: httpx.AsyncClient, method: str, path: str
) -> None:
    body = campaign_body() if method in ("POST", "PATCH") else None
    response = await points.request(method, path, json=body, headers=READER)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_an_unknown_campaign_is_a_404_problem(points: httpx.AsyncClient, method: str) -> None:
    body = {"name": "x"} if method == "PATCH" else None
    response = await points.request(
        method, f"/v1/campaigns/{uuid.uuid4()}", json=body, headers=ADMIN
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:fedelta:problem:unknown-campaign"


@pytest.mark.parametrize(
    "body",
    [
        campaign_body(multiplier=2),  # a number, not a string
        campaign_body(multiplier="0.5"),
        campaign_body(multiplier="101"),
        campaign_body(bonus=0),
        campaign_body(unknown="field"),
        campaign_body(starts_at="2026-11-22"),
        campaign_body(validity_days=0),
        {"name": "no period", "multiplier": "2"},
        campaign_body(multiplier=None),  # neither multiplier nor bonus
        campaign_body(ends_at=_instant(NOW - timedelta(days=2))),  # ends before it starts
    ],
)
async def test_a_bad_campaign_is_a_422_problem(
    points: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await points.post("/v1/campaigns", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_patch_that_leaves_a_campaign_without_effect_is_refused(
    points: httpx.AsyncClient,
) -> None:
    created = await points.post("/v1/campaigns", json=campaign_body(), headers=ADMIN)
    path = f"/v1/campaigns/{created.json()['id']}"
    refused = await points.patch(path, json={"multiplier": None}, headers=ADMIN)
    assert refused.status_code == 422
    assert refused.json()["type"] == "urn:fedelta:problem:invalid-campaign"
    assert (await points.get(path, headers=ADMIN)).json()["multiplier"] == "2"
    await points.delete(path, headers=ADMIN)
