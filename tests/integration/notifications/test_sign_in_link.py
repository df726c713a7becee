"""Issue 22, the wallet's sign-in by email, on the real stack: a member enrolled through a
published customer.enrolled is found by their address (whatever its case), their sign-in link
reaches the mail catcher at once (quiet hours all day, a cap of one and no email consent hold
nothing back), and the delivery log keeps no trace of the link once the message went out."""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.adapters.repositories.api import api_repository
from services.notifications.adapters.repositories.consumer import consumer_repository
from services.notifications.adapters.sealed_secrets import seal_sign_in_link
from services.notifications.adapters.tables import deliveries
from services.notifications.domain.model import sign_in_id, sign_in_message
from services.notifications.settings import NotificationsSettings
from shared.messaging import events, topics
from tests.support import factories
from tests.support.notifications import (
    delivering_settings,
    mails_to,
    new_customer,
    rows,
    send,
    zone_at,
)
from tests.support.polling import eventually
from tests.support.services import ADMIN
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(stack: Stack) -> NotificationsSettings:
    # Quiet all day but the last minute, and one message a day: a marketing message would wait.
    return delivering_settings(
        stack, quiet_hours_start="00:00", quiet_hours_end="23:59", daily_cap="1"
    )


def link() -> str:
    return f"http://127.0.0.1:8086/wallet/sign-in/{secrets.token_urlsafe(32)}"


async def enrolled(
    stack: Stack, client: httpx.AsyncClient, *, locale: str = "en"
) -> tuple[str, str]:
    """A member enrolled through the customers topic without email consent, at noon on their
    clock, whose address is stored with capitals; once notifications has their contact."""
    customer_id, address = new_customer()
    stored = address.replace("@example.com", "@Example.COM")
    zone = zone_at(12)
    await send(
        stack,
        topics.CUSTOMERS,
        factories.enrolment(
            customer_id,
            email=stored,
            locale=locale,
            time_zone=zone.key,
            consent=events.Consent(email=False),
        ),
    )

    async def known() -> bool:
        found = await lookup(client, address.upper())
        return customer_id in found["customer_ids"]

    await eventually(known, within=60, what="the member's contact")
    return customer_id, stored


async def lookup(client: httpx.AsyncClient, email: str) -> dict[str, Any]:
    response = await client.get("/v1/contacts", params={"email": email}, headers=ADMIN)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def plain_text(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def test_the_member_is_found_by_address_and_gets_the_link_at_once(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, address = await enrolled(stack, client, locale="it-IT")
    assert await lookup(client, address.lower()) == {"customer_ids": [customer_id]}
    url = link()
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=15)

    response = await client.post(
        f"/v1/customers/{customer_id}/sign-in-link",
        json={"url": url, "expires_at": expires_at.isoformat()},
        headers=ADMIN,
    )

    assert response.status_code == 202, response.text
    notification_id = response.json()["notification_id"]
    assert notification_id == sign_in_id(customer_id, url)

    async def mailed() -> list[EmailMessage] | None:
        return mails_to(stack, address) or None

    (mail,) = await eventually(mailed, within=30, what="the sign-in email")
    assert mail["Subject"] == "Il tuo link di accesso"
    assert mail["Message-ID"] == f"<{notification_id}@fedelta.localhost>"
    assert mail["List-Unsubscribe"] is None
    body = plain_text(mail)
    assert url in body and "una sola volta" in body

    async def settled() -> list[Any] | None:
        found = [r for r in await rows(database, customer_id) if r.template == "sign_in"]
        return found if found and found[0].status == "sent" else None

    (row,) = await eventually(settled, within=30, what="the message recorded as sent")
    assert row.notification_id == notification_id and row.attempts == 1
    assert "link" not in row.params
    assert url.rsplit("/", 1)[1] not in json.dumps(row.params)
    assert row.params["expires_at"] == expires_at.isoformat()


async def test_a_second_link_the_same_day_goes_too_and_a_repeated_call_sends_once(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, address = await enrolled(stack, client)
    expires_at = (datetime.now(UTC) + timedelta(minutes=15)).isoformat()
    first, second = link(), link()
    for url in (first, first, second):
        response = await client.post(
            f"/v1/customers/{customer_id}/sign-in-link",
            json={"url": url, "expires_at": expires_at},
            headers=ADMIN,
        )
        assert response.status_code == 202, response.text

    async def both() -> list[EmailMessage] | None:
        found = mails_to(stack, address)
        return found if len(found) >= 2 else None

    mails = await eventually(both, within=30, what="both sign-in emails")
    bodies = sorted(plain_text(mail) for mail in mails)
    assert len(mails) == 2  # the repeated call found the message it made
    assert (
        sum(first in body for body in bodies) == 1 and sum(second in body for body in bodies) == 1
    )
    assert all(mail["Subject"] == "Your sign-in link" for mail in mails)


async def test_refusals_store_nothing(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, _ = await enrolled(stack, client)
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    expired = await client.post(
        f"/v1/customers/{customer_id}/sign-in-link",
        json={"url": link(), "expires_at": past},
        headers=ADMIN,
    )
    unknown = await client.post(
        "/v1/customers/nobody-at-all/sign-in-link",
        json={"url": link(), "expires_at": (datetime.now(UTC) + timedelta(minutes=5)).isoformat()},
        headers=ADMIN,
    )
    malformed = await client.get("/v1/contacts", params={"email": "not-an-address"}, headers=ADMIN)
    assert (expired.status_code, unknown.status_code, malformed.status_code) == (422, 404, 422)
    assert [r for r in await rows(database, customer_id) if r.template == "sign_in"] == []


async def test_erasing_the_member_drops_a_waiting_link_from_the_row(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    """The consumer's erasure (SQL): a link still waiting is suppressed and removed."""
    customer_id, _ = await enrolled(stack, client)
    url, now = link(), datetime.now(UTC)
    notification_id = sign_in_id(customer_id, url)
    message = sign_in_message(
        notification_id,
        customer_id,
        seal_sign_in_link(notification_id, url),
        now + timedelta(minutes=15),
        zone_at(12),
        now,
    )
    # Not due for an hour: the dispatcher leaves it alone.
    async with database.begin() as conn:
        await api_repository(conn).schedule(
            [replace(message, next_attempt_at=now + timedelta(hours=1))]
        )
    async with database.begin() as conn:
        assert (
            await consumer_repository(conn).suppress_scheduled({customer_id}, "customer erased")
            >= 1
        )
    async with database.connect() as conn:
        row = (
            await conn.execute(
                sa.select(deliveries).where(deliveries.c.notification_id == notification_id)
            )
        ).one()
    assert row.status == "suppressed"
    assert "link" not in row.params and set(row.params) == {"expires_at", "time_zone"}


async def test_the_address_is_looked_up_through_its_index(database: AsyncEngine) -> None:
    async with database.connect() as conn:
        definition = await conn.scalar(
            sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_contacts_email_lower'")
        )
        await conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            await conn.scalars(
                sa.text(
                    "EXPLAIN SELECT customer_id FROM contacts "
                    "WHERE lower(email) = lower(:e) AND email IS NOT NULL"
                ),
                {"e": "ada@example.com"},
            )
        )
    assert definition is not None and "lower(email)" in definition
    assert "ix_contacts_email_lower" in plan
