"""Tier reviews, downgrade warnings, staff overrides and the history, on the test stack's
PostgreSQL and Kafka: the jobs run through the admin endpoint as of chosen instants."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from shared.web.auth import actor_of
from tests.support import factories
from tests.support.kafka import events_for, publish
from tests.support.polling import eventually
from tests.support.services import ADMIN, READER
from tests.support.stack import ADMIN_TOKEN, Stack

pytestmark = pytest.mark.integration

WITHIN = 60.0


def new_customer_id() -> str:
    return f"tiers-review-it-{uuid.uuid4()}"


async def send(stack: Stack, *batch: CloudEvent) -> None:
    for event in batch:
        assert event.subject is not None
        await publish(stack.kafka, event.topic, event.subject, event)


async def tier_with_spend(
    client: httpx.AsyncClient, customer_id: str, spend: str
) -> dict[str, Any] | None:
    response = await client.get(f"/v1/customers/{customer_id}/tier", headers=READER)
    if response.status_code != 200:
        return None
    body: dict[str, Any] = response.json()
    return body if Decimal(body["qualifying_spend"]) == Decimal(spend) else None


async def customer_with_spend(
    stack: Stack,
    client: httpx.AsyncClient,
    total: str,
    refunded: str | None,
    at: datetime,
    later: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """An enrolled customer who bought `total` at `at` (and had `refunded` of it back), and
    bought `later` an hour after."""
    customer_id = new_customer_id()
    bought = factories.purchase(customer_id, total, at=at)
    await send(stack, factories.enrolment(customer_id, at=at))
    batch = [bought]
    if refunded is not None:
        purchase_id = bought.data_as(events.PurchaseCompleted).purchase_id
        batch.append(
            factories.refund(
                customer_id, purchase_id, refunded, at=at, occurred_at=at + timedelta(minutes=5)
            )
        )
    if later is not None:
        batch.append(
            factories.purchase(customer_id, later, at=at, occurred_at=at + timedelta(hours=1))
        )
    await send(stack, *batch)
    spend = Decimal(total) - Decimal(refunded or 0) + Decimal(later or 0)
    body = await eventually(
        lambda: tier_with_spend(client, customer_id, str(spend)),
        within=WITHIN,
        what=f"a qualifying spend of {spend}",
    )
    return customer_id, body


async def run_job(client: httpx.AsyncClient, name: str, as_of: datetime) -> dict[str, Any]:
    response = await client.post(
        f"/v1/admin/jobs/{name}", params={"as_of": as_of.isoformat()}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    [summary] = response.json()["jobs"]
    assert isinstance(summary, dict)
    return summary


async def published(
    stack: Stack, customer_id: str, event_type: str, count: int
) -> list[CloudEvent]:
    async def found() -> list[CloudEvent] | None:
        of_type = [
            e
            for e in await events_for(stack.kafka, topics.TIERS, customer_id)
            if e.type == event_type
        ]
        return of_type if len(of_type) >= count else None

    return await eventually(found, within=WITHIN, what=f"{count} {event_type}")


async def test_a_warning_then_a_downgrade_at_review_each_once(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    bought_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=5)
    customer_id, gold = await customer_with_spend(stack, client, "2100", "1000", bought_at)
    review_at = bought_at + timedelta(days=365)
    # A refund lowers the spend at once, but the tier only at review. By then the purchase
    # that reached gold is a year old, out of the window: only the refund still counts.
    assert gold["tier"] == "gold"
    assert datetime.fromisoformat(gold["review_at"]) == review_at
    assert Decimal(gold["amount_to_keep_tier"]) == Decimal(3000)

    warn_at = review_at - timedelta(days=30)
    first = await run_job(client, "warn-downgrades", warn_at)
    again = await run_job(client, "warn-downgrades", warn_at)
    assert first["warnings"] >= 1
    assert again["warnings"] == 0
    [warning] = await published(stack, customer_id, events.TIER_DOWNGRADE_WARNING, 1)
    payload = events.TierDowngradeWarning.model_validate(warning.data)
    assert (payload.tier, payload.would_become) == ("gold", "silver")
    assert payload.review_at == review_at
    assert payload.amount_to_keep_tier == Decimal(3000)

    reviewed = await run_job(client, "review-tiers", review_at)
    repeated = await run_job(client, "review-tiers", review_at)
    assert reviewed["downgrades"] >= 1
    assert (repeated["customers"], repeated["downgrades"]) == (0, 0)
    changes = await published(stack, customer_id, events.TIER_CHANGED, 2)
    down = events.TierChanged.model_validate(changes[-1].data)
    assert (down.from_tier, down.to_tier, down.direction) == ("gold", "silver", "down")
    assert down.effective_at == review_at
    assert down.review_at == review_at + timedelta(days=365)

    silver = (await client.get(f"/v1/customers/{customer_id}/tier", headers=READER)).json()
    assert (silver["tier"], silver["since"]) == ("silver", gold["review_at"])
    history = await client.get(f"/v1/customers/{customer_id}/tier/history", headers=READER)
    assert history.status_code == 200
    assert [
        (c["from_tier"], c["to_tier"], c["direction"], c["reason"], c["actor"])
        for c in history.json()["changes"]
    ] == [
        ("gold", "silver", "down", "review", None),
        ("bronze", "gold", "up", "qualifying_spend", None),
    ]


async def test_a_customer_who_keeps_the_spend_is_neither_warned_nor_downgraded(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    bought_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    # The spend after the upgrade still counts at the review, and keeps the tier.
    customer_id, gold = await customer_with_spend(
        stack, client, "2100", None, bought_at, later="2000"
    )
    assert Decimal(gold["amount_to_keep_tier"]) == 0
    review_at = bought_at + timedelta(days=365)

    await run_job(client, "warn-downgrades", review_at - timedelta(days=30))
    await run_job(client, "review-tiers", review_at)

    body = (await client.get(f"/v1/customers/{customer_id}/tier", headers=READER)).json()
    assert body["tier"] == "gold"
    assert datetime.fromisoformat(body["review_at"]) == review_at + timedelta(days=365)
    types = [e.type for e in await events_for(stack.kafka, topics.TIERS, customer_id)]
    assert types == [events.TIER_CHANGED]  # the upgrade alone


async def test_a_staff_override_is_a_floor_until_its_date_then_reviewed(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    bought_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    customer_id, _ = await customer_with_spend(stack, client, "100", None, bought_at)
    until = bought_at + timedelta(days=60)
    body = {
        "tier": "platinum",
        "reason": "VIP guest",
        "until": until.isoformat(),
    }
    headers = {**ADMIN, "Idempotency-Key": str(uuid.uuid4())}

    first = await client.post(f"/v1/customers/{customer_id}/tier", json=body, headers=headers)
    replayed = await client.post(f"/v1/customers/{customer_id}/tier", json=body, headers=headers)
    as_reader = await client.post(f"/v1/customers/{customer_id}/tier", json=body, headers=READER)
    again = await client.post(f"/v1/customers/{customer_id}/tier", json=body, headers=ADMIN)

    assert first.status_code == 200, first.text
    assert first.json()["tier"] == "platinum"
    assert datetime.fromisoformat(first.json()["review_at"]) == until
    assert replayed.status_code == 200
    assert replayed.json() == first.json()
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert as_reader.status_code == 403
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    [changed] = await published(stack, customer_id, events.TIER_CHANGED, 1)
    payload = events.TierChanged.model_validate(changed.data)
    assert (payload.from_tier, payload.to_tier, payload.direction) == ("bronze", "platinum", "up")
    assert payload.reason == "VIP guest"
    assert payload.review_at == until

    await run_job(client, "review-tiers", until - timedelta(seconds=1))
    still = (await client.get(f"/v1/customers/{customer_id}/tier", headers=READER)).json()
    assert still["tier"] == "platinum"
    await run_job(client, "review-tiers", until)
    history = (await client.get(f"/v1/customers/{customer_id}/tier/history", headers=READER)).json()
    assert [
        (c["from_tier"], c["to_tier"], c["reason"], c["actor"]) for c in history["changes"]
    ] == [
        ("platinum", "gold", "review", None),
        ("bronze", "platinum", "VIP guest", actor_of("admin", ADMIN_TOKEN)),
    ]


async def test_an_override_of_an_unknown_customer_is_a_404_problem(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        f"/v1/customers/{new_customer_id()}/tier",
        json={"tier": "gold", "reason": "x"},
        headers=ADMIN,
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_tier_program_shows_its_basis_and_review_rules(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/v1/tiers", headers=READER)).json()
    assert (body["basis"], body["review_period_days"], body["downgrade_warning_days"]) == (
        "rolling",
        365,
        30,
    )
