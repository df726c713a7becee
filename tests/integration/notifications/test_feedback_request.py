"""The invitation to give feedback on the real stack: with a delay set, a
purchase read by notifications becomes one `feedback_request` email in the member's language
once the delay after the purchase has passed (at once for an older purchase), however often
the purchase is told; a fresh purchase's invitation waits for its delay.

The delay is the longest allowed (30 days): the other tests' purchases read while this module
runs are invited only 30 days from now, so none of their members gets a message; this
module's own purchase happened 31 days ago (published straight to the purchases topic, as
ingest would have), so its invitation goes out at once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.domain.feedback import FEEDBACK_REQUEST, feedback_request_id
from services.notifications.settings import NotificationsSettings
from shared.messaging import events, topics
from tests.support import factories
from tests.support.notifications import delivering_settings, mails_to, rows, send
from tests.support.polling import eventually
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

DELAY = timedelta(hours=720)
SUBJECT_FI = "Millainen käyntisi oli?"


@pytest.fixture(scope="module")
def settings(stack: Stack) -> NotificationsSettings:
    return delivering_settings(stack, feedback_request_delay_hours=str(720))


async def enrol(stack: Stack, database: AsyncEngine) -> tuple[str, str]:
    token = uuid.uuid4().hex
    customer_id, email = f"cust-{token}", f"{token}@example.com"
    await send(
        stack,
        topics.CUSTOMERS,
        factories.enrolment(
            customer_id, email=email, locale="fi", consent=events.Consent(email=True)
        ),
    )

    async def known() -> bool:
        return any(r.template == "welcome" for r in await rows(database, customer_id))

    await eventually(known, within=60, what="the member's contact in notifications")
    return customer_id, email


async def invitations(database: AsyncEngine, customer_id: str) -> list[Any]:
    return [r for r in await rows(database, customer_id) if r.template == FEEDBACK_REQUEST]


async def test_an_older_purchase_is_invited_at_once_and_only_once(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, email = await enrol(stack, database)
    occurred = datetime.now(UTC) - DELAY - timedelta(days=1)
    purchase_id = f"p-{uuid.uuid4().hex}"
    purchase = factories.purchase(customer_id, occurred_at=occurred, purchase_id=purchase_id)
    await send(stack, topics.PURCHASES, purchase)
    await send(stack, topics.PURCHASES, purchase)  # delivered twice
    # The same purchase told again under another event: still one invitation.
    await send(
        stack,
        topics.PURCHASES,
        factories.purchase(customer_id, occurred_at=occurred, purchase_id=purchase_id),
    )

    async def mailed() -> list[EmailMessage] | None:
        found = [m for m in mails_to(stack, email) if str(m["Subject"]) == SUBJECT_FI]
        return found or None

    [mail] = await eventually(mailed, within=60, what="the feedback invitation")
    body = mail.get_body(("plain",))
    assert body is not None and "kiitos ostoksestasi" in str(body.get_content())
    # The mail server has it before the dispatcher records it sent (it records after the send).
    [row] = await eventually(
        lambda: _sent(database, customer_id), within=60, what="the invitation recorded sent"
    )
    assert row.notification_id == feedback_request_id(factories.PARTNER, purchase_id)
    assert len([m for m in mails_to(stack, email) if str(m["Subject"]) == SUBJECT_FI]) == 1


async def _sent(database: AsyncEngine, customer_id: str) -> list[Any] | None:
    found = await invitations(database, customer_id)
    return found if found and all(row.status == "sent" for row in found) else None


async def test_a_fresh_purchase_is_invited_only_after_the_delay(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, _ = await enrol(stack, database)
    occurred = datetime.now(UTC) - timedelta(minutes=5)
    await send(stack, topics.PURCHASES, factories.purchase(customer_id, occurred_at=occurred))

    async def scheduled() -> list[Any] | None:
        return await invitations(database, customer_id) or None

    [row] = await eventually(scheduled, within=60, what="the invitation scheduled")
    assert row.status == "scheduled"
    assert row.next_attempt_at == occurred + DELAY
