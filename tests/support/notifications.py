"""What the notifications integration tests share: events as the other services publish
them, new customers, the caught mail, the delivery rows and the jobs run as of an instant."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.adapters.tables import deliveries
from services.notifications.settings import NotificationsSettings
from shared.messaging import events
from shared.messaging.events import CloudEvent, new_event
from tests.support.kafka import publish
from tests.support.services import ADMIN, settings_for
from tests.support.stack import Stack


def tier_up(customer_id: str, to_tier: events.TierName) -> CloudEvent:
    now = datetime.now(UTC)
    return new_event(
        events.TierChanged(
            customer_id=customer_id,
            from_tier="bronze",
            to_tier=to_tier,
            direction="up",
            reason="qualifying spend",
            effective_at=now,
            review_at=now + timedelta(days=365),
        ),
        source="tiers",
        subject=customer_id,
        time=now,
    )


async def send(stack: Stack, topic: str, event: CloudEvent) -> None:
    await publish(stack.kafka_bootstrap_servers, topic, event.subject, event)


def mails_to(stack: Stack, address: str) -> list[EmailMessage]:
    found = []
    for path in sorted(stack.mail_dir.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        if message["To"] == address:
            found.append(message)
    return found


def new_customer() -> tuple[str, str]:
    """A customer id and an email address of their own."""
    token = uuid.uuid4().hex
    return f"cust-{token}", f"{token}@example.com"


def zone_at(local_hour: int) -> ZoneInfo:
    """A fixed-offset zone whose wall clock shows `local_hour` now, whatever the real time:
    the service runs on the system clock, so the customer's zone puts them where the test
    needs them (Etc/GMT-N is UTC+N)."""
    offset = (local_hour - datetime.now(UTC).hour) % 24
    if offset > 14:
        offset -= 24
    return ZoneInfo("Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}")


async def rows(database: AsyncEngine, customer_id: str) -> list[sa.Row[Any]]:
    """The customer's rows in the delivery log."""
    async with database.connect() as conn:
        result = await conn.execute(
            sa.select(deliveries).where(deliveries.c.customer_id == customer_id)
        )
        return list(result)


async def run_job(client: httpx.AsyncClient, name: str, as_of: datetime) -> dict[str, Any]:
    response = await client.post(
        f"/v1/admin/jobs/{name}", params={"as_of": as_of.isoformat()}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    [summary] = response.json()["jobs"]
    assert isinstance(summary, dict)
    return summary


def delivering_settings(stack: Stack, **overrides: str) -> NotificationsSettings:
    """Notifications that delivers whatever the time of day a test runs at: no quiet hours, a
    generous daily cap and a fast dispatcher (never-harass has tests of its own), migrated."""
    stack.migrate("notifications")
    chosen = {
        "dispatch_interval_seconds": "0.05",
        "quiet_hours_start": "00:00",
        "quiet_hours_end": "00:00",
        "daily_cap": "100",
        **overrides,
    }
    return settings_for(NotificationsSettings, stack, "notifications", **chosen)
