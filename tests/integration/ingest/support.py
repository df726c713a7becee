"""What the ingest integration tests share: a signing POS, and helpers to read what was
stored and published. The fixtures are in conftest.py beside this file."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.messaging.events import CloudEvent
from shared.web.auth import SIGNATURE_HEADER, sign
from tests.support.kafka import events_for
from tests.support.polling import eventually
from tests.support.stack import Stack

PROBLEM_JSON = "application/problem+json"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class Pos:
    """A partner's point-of-sale: signs every call it makes, as a real one must."""

    client: httpx.AsyncClient
    partner_id: str
    api_key: str
    signing_secret: str

    async def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        signed_body: bytes | None = None,
        timestamp: int | None = None,
        api_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        content = raw if raw is not None else json.dumps(body).encode()
        signature = sign(
            self.signing_secret,
            int(time.time()) if timestamp is None else timestamp,
            method,
            httpx.URL(path).raw_path,
            content if signed_body is None else signed_body,
        )
        return await self.client.request(
            method,
            path,
            content=content,
            headers={
                "Authorization": f"Bearer {api_key or self.api_key}",
                SIGNATURE_HEADER: signature,
                "Content-Type": "application/json",
                **(headers or {}),
            },
        )

    async def enrol(self, customer_id: str, **fields: Any) -> httpx.Response:
        return await self.send("POST", "/v1/customers", {"customer_id": customer_id, **fields})

    async def purchase(self, customer_id: str, purchase_id: str, **fields: Any) -> httpx.Response:
        body = {
            "purchase_id": purchase_id,
            "customer_id": customer_id,
            "occurred_at": iso(datetime.now(UTC) - timedelta(minutes=1)),
            "currency": "EUR",
            "total": "49.99",
            **fields,
        }
        return await self.send("POST", "/v1/purchases", body)

    async def refund(
        self, purchase_id: str, refund_id: str, amount: str, **fields: Any
    ) -> httpx.Response:
        body = {
            "refund_id": refund_id,
            "amount": amount,
            "occurred_at": iso(datetime.now(UTC)),
            **fields,
        }
        return await self.send("POST", f"/v1/purchases/{purchase_id}/refunds", body)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def published(stack: Stack, topic: str, customer_id: str, count: int) -> list[CloudEvent]:
    """The customer's events on the topic, once there are at least `count` of them."""

    async def probe() -> list[CloudEvent] | None:
        found = await events_for(stack.kafka, topic, subject=customer_id)
        return found if len(found) >= count else None

    return await eventually(probe, what=f"{count} event(s) for {customer_id} on {topic}")


async def published_until(
    stack: Stack, topic: str, customer_id: str, marker_event_id: str
) -> list[CloudEvent]:
    """The customer's events up to and with the marker. One customer's events share a
    partition, so whatever an earlier call published would be here before the marker."""

    async def probe() -> list[CloudEvent] | None:
        found = await events_for(stack.kafka, topic, subject=customer_id)
        return found if any(event.id == marker_event_id for event in found) else None

    return await eventually(probe, what=f"event {marker_event_id} on {topic}")


async def count_rows(db: AsyncEngine, table: sa.Table, *conditions: Any) -> int:
    async with db.connect() as conn:
        return int(
            await conn.scalar(sa.select(sa.func.count()).select_from(table).where(*conditions)) or 0
        )


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["detail"]
    return problem
