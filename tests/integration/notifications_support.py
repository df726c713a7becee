"""What the notifications integration tests share: events as the other services publish
them, and the caught mail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

from shared.messaging import events
from shared.messaging.events import CloudEvent, new_event
from tests.support.kafka import publish
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
