"""Engagement's messages on the real stack: events on `fedelta.engagement.v1` (published with
engagement's source) become emails in the member's language in the real SMTP catcher; a full
stamp card delivered twice is one email, a challenge and its badge are one email naming the
badge, a surprise is told, and a stamp card's own reward sends nothing more."""

from __future__ import annotations

import uuid
from collections import Counter
from email.message import EmailMessage

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.settings import NotificationsSettings
from shared.messaging import events, topics
from tests.support import factories
from tests.support.notifications import delivering_settings, mails_to, rows, send
from tests.support.polling import eventually
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(stack: Stack) -> NotificationsSettings:
    return delivering_settings(stack)


async def enrol(stack: Stack, database: AsyncEngine, locale: str) -> tuple[str, str]:
    """A member with email consent, once notifications holds their contact (their welcome is
    scheduled with it), so that what follows goes out at once."""
    token = uuid.uuid4().hex
    customer_id, email = f"cust-{token}", f"{token}@example.com"
    await send(
        stack,
        topics.CUSTOMERS,
        factories.enrolment(
            customer_id,
            email=email,
            locale=locale,
            time_zone="UTC",
            consent=events.Consent(email=True),
        ),
    )

    async def known() -> bool:
        return any(r.template == "welcome" for r in await rows(database, customer_id))

    await eventually(known, within=60, what="the member's contact in notifications")
    return customer_id, email


def subjects(stack: Stack, email: str) -> Counter[str]:
    return Counter(str(m["Subject"]) for m in mails_to(stack, email))


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


# Engagement's templates: the others (the welcome; a points digest, should a points service
# on the shared stack answer the enrolment or the rewards) are not this module's.
ENGAGEMENT = {"stamp_card_completed", "challenge_completed", "badge_earned", "surprise", "birthday"}


async def templates(database: AsyncEngine, customer_id: str, status: str | None) -> Counter[str]:
    """The member's engagement messages by template (those in `status`, or all)."""
    return Counter(
        r.template
        for r in await rows(database, customer_id)
        if r.template in ENGAGEMENT and status in (None, r.status)
    )


async def test_a_full_stamp_card_is_one_email_even_delivered_twice(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, email = await enrol(stack, database, "it")
    card = factories.stamp_card_completed(
        customer_id, name="Caffè del mattino", stamps_required=9, completed_count=1
    )
    await send(stack, topics.ENGAGEMENT, card)
    await send(stack, topics.ENGAGEMENT, card)  # redelivered: the same event
    # A later message on the member's partition: once it is sent, both copies were handled.
    marker = factories.badge_earned(customer_id, challenge_id=f"ch-{uuid.uuid4()}", badge="Gufo")
    await send(stack, topics.ENGAGEMENT, marker)

    told = Counter({"stamp_card_completed": 1, "badge_earned": 1})

    async def both_sent() -> bool:
        return await templates(database, customer_id, "sent") == told

    await eventually(both_sent, within=60, what="the card's and the marker's emails")
    assert await templates(database, customer_id, None) == told
    subject = "Tessera timbri completata: Caffè del mattino"
    assert subjects(stack, email)[subject] == 1
    [message] = [m for m in mails_to(stack, email) if m["Subject"] == subject]
    assert "tutti i 9 timbri" in text_of(message)


async def test_a_challenge_and_its_badge_are_one_email_and_a_surprise_is_told(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, email = await enrol(stack, database, "en")
    challenge = f"ch-{uuid.uuid4()}"
    grant = f"g-{uuid.uuid4()}"
    published = [
        # A stamp card's reward: told by its card's message, never on its own.
        factories.engagement_rewarded(customer_id, reason="stamp_card", points=30),
        factories.engagement_rewarded(customer_id, grant_id=grant, reason="challenge"),
        factories.challenge_completed(
            customer_id, challenge_id=challenge, name="Five visits", badge="Regular", grant_id=grant
        ),
        factories.badge_earned(customer_id, challenge_id=challenge, badge="Regular"),
        factories.engagement_rewarded(customer_id, reason="surprise", points=40, name="Lucky"),
    ]
    for event in published:
        await send(stack, topics.ENGAGEMENT, event)

    told = Counter({"challenge_completed": 1, "surprise": 1})

    async def both_sent() -> bool:
        return await templates(database, customer_id, "sent") == told

    await eventually(both_sent, within=60, what="the challenge's and the surprise's emails")
    # The surprise came last on the member's partition: every event before it was handled.
    assert await templates(database, customer_id, None) == told
    mails = {str(m["Subject"]): m for m in mails_to(stack, email)}
    assert "Regular" in text_of(mails["Challenge completed: Five visits"])
    assert "40 points" in text_of(mails["A surprise for you"])
    assert not any("badge" in subject.lower() for subject in mails)
