"""An imported member on the real stack (issue 23, product §11): no welcome unless the import
asked for it, nothing about what the import brought over (the opening lots and tier), and
later messages as for any member."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.adapters.tables import contacts
from services.notifications.settings import NotificationsSettings
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent, new_event
from tests.support import factories
from tests.support.notifications import delivering_settings, mails_to, new_customer, rows, send
from tests.support.polling import eventually
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(stack: Stack) -> NotificationsSettings:
    return delivering_settings(stack)


def imported(customer_id: str, email: str, *, welcome: bool) -> CloudEvent:
    return factories.enrolment(
        customer_id,
        email=email,
        consent=events.Consent(email=True),
        imported=True,
        welcome=welcome,
        version=1,
    )


def updated(customer_id: str, email: str) -> CloudEvent:
    now = datetime.now(UTC)
    return factories.profile_update(
        customer_id, email=email, consent=events.Consent(email=True), version=2, enrolled_at=now
    )


def earned(customer_id: str, points: int, reason: str) -> CloudEvent:
    now = datetime.now(UTC)
    return new_event(
        events.PointsEarned(
            customer_id=customer_id,
            points=points,
            reason=reason,
            rule_ids=[reason],
            available_at=now,
            expires_at=now + timedelta(days=90),
        ),
        source="points",
        subject=customer_id,
        time=now,
    )


def tier_up(customer_id: str, to_tier: events.TierName, reason: str) -> CloudEvent:
    now = datetime.now(UTC)
    return new_event(
        events.TierChanged(
            customer_id=customer_id,
            from_tier="bronze",
            to_tier=to_tier,
            direction="up",
            reason=reason,
            effective_at=now - timedelta(days=30),
            review_at=now + timedelta(days=335),
        ),
        source="tiers",
        subject=customer_id,
        time=now,
    )


async def contact_email(database: AsyncEngine, customer_id: str, email: str) -> bool:
    async with database.connect() as conn:
        found = await conn.scalar(
            sa.select(contacts.c.email).where(contacts.c.customer_id == customer_id)
        )
    return found == email


async def rows_once(
    database: AsyncEngine, customer_id: str, count: int
) -> list[sa.Row[Any]] | None:
    found = await rows(database, customer_id)
    return found if len(found) >= count else None


async def test_an_imported_member_hears_only_of_what_follows_the_import(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, email = new_customer()
    await send(stack, topics.CUSTOMERS, imported(customer_id, email, welcome=False))
    await send(stack, topics.POINTS, earned(customer_id, 300, "import"))
    await send(stack, topics.TIERS, tier_up(customer_id, "gold", "import"))
    # Behind each on its partition: once these are applied, so are the import's events.
    changed = f"changed-{email}"
    await send(stack, topics.CUSTOMERS, updated(customer_id, changed))
    await send(stack, topics.POINTS, earned(customer_id, 7, "purchase"))
    await send(stack, topics.TIERS, tier_up(customer_id, "platinum", "qualifying spend"))

    await eventually(lambda: contact_email(database, customer_id, changed), what="the update")
    found = await eventually(
        lambda: rows_once(database, customer_id, 2), within=60, what="the two later messages"
    )
    assert sorted(r.template for r in found) == ["points_earned", "tier_up"]
    [digest] = [r for r in found if r.template == "points_earned"]
    assert digest.params["points"] == 7  # the imported 300 joined no digest
    [tier] = [r for r in found if r.template == "tier_up"]
    assert tier.params["tier"] == "platinum"
    assert all(r.template != "welcome" for r in await rows(database, customer_id))
    assert mails_to(stack, email) == []


async def test_an_import_with_the_welcome_sends_it(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, email = new_customer()
    await send(stack, topics.CUSTOMERS, imported(customer_id, email, welcome=True))

    async def sent() -> list[sa.Row[Any]] | None:
        found = await rows(database, customer_id)
        return found if found and all(r.status == "sent" for r in found) else None

    [welcome] = await eventually(sent, within=60, what="the welcome to be sent")
    assert welcome.template == "welcome"

    async def mailed() -> bool:
        return len(mails_to(stack, email)) == 1

    await eventually(mailed, what="the welcome's .eml file")
