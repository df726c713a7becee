"""What the engagement integration tests share: rules made over the admin API, a member's
cards and challenges as the API shows them, and engagement's events about a member."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from tests.support.kafka import events_for
from tests.support.polling import eventually
from tests.support.services import ADMIN, READER
from tests.support.stack import Stack

WITHIN = 60.0


def new_id(role: str) -> str:
    return f"engagement-it-{role}-{uuid.uuid4()}"


def unique_category() -> str:
    """A category no other test's purchases carry: a rule scoped to it sees this test's only."""
    return f"cat-{uuid.uuid4().hex[:12]}"


def coffee(category: str, quantity: int = 1, unit_price: str = "3.00") -> events.PurchaseItem:
    return events.PurchaseItem(
        sku="espresso",
        category=category,
        quantity=Decimal(quantity),
        unit_price=Decimal(unit_price),
    )


async def create(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(
        path, json=body, headers={**ADMIN, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def window(days_before: int = 1, days_after: int = 30) -> dict[str, str]:
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "starts_at": (now - timedelta(days=days_before)).isoformat(),
        "ends_at": (now + timedelta(days=days_after)).isoformat(),
    }


async def card_of(client: httpx.AsyncClient, customer_id: str, card_id: str) -> dict[str, Any]:
    """The member's card once engagement knows the member."""

    async def shown() -> dict[str, Any] | None:
        response = await client.get(f"/v1/customers/{customer_id}/stamp-cards", headers=READER)
        if response.status_code != 200:
            return None
        return next((c for c in response.json()["items"] if c["card_id"] == card_id), None)

    return await eventually(shown, within=WITHIN, what=f"card {card_id} of {customer_id}")


async def card_reaches(
    client: httpx.AsyncClient, customer_id: str, card_id: str, stamps: int, completed: int
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        card = await card_of(client, customer_id, card_id)
        return card if (card["stamps"], card["completed_count"]) == (stamps, completed) else None

    return await eventually(
        reached, within=WITHIN, what=f"{stamps} stamps and {completed} completed on {card_id}"
    )


def _of_rule(event: CloudEvent, rule_id: str | None) -> bool:
    """Whether the event is about the rule (every event when none is named): a rule of another
    test on the shared stack may reward the same member."""
    named = {event.data.get(k) for k in ("rule_id", "card_id", "challenge_id")}
    return rule_id is None or rule_id in named


async def engagement_events(
    stack: Stack, customer_id: str, types: Sequence[str], rule_id: str | None = None
) -> list[CloudEvent]:
    """Engagement's events of these types about the member (and the rule)."""
    found = await events_for(stack.kafka, topics.ENGAGEMENT, customer_id)
    return [e for e in found if e.type in types and _of_rule(e, rule_id)]


async def events_reach(
    stack: Stack, customer_id: str, types: Sequence[str], count: int, rule_id: str | None = None
) -> list[CloudEvent]:
    async def enough() -> list[CloudEvent] | None:
        found = await engagement_events(stack, customer_id, types, rule_id)
        return found if len(found) >= count else None

    return await eventually(enough, within=WITHIN, what=f"{count} of {types} for {customer_id}")
