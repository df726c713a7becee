"""The win-back offer on the real stack (issue 21): points' `offer_granted`, from Kafka,
reaches the member as an email stating the offer and its last day in their time zone, and the
`win-back` job then sends no plain win-back for the lapse the offer told of."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from babel.dates import format_date
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.adapters.tables import deliveries, purchase_activity
from services.notifications.settings import NotificationsSettings
from shared.messaging import events, topics
from shared.messaging.events import new_event
from tests.support import factories
from tests.support.notifications import delivering_settings, mails_to, new_customer, run_job, send
from tests.support.polling import eventually
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

# As the plain win-back's test does: a lapse longer than any other test's purchases go back,
# so that running the job as of now tells no one else's lapse.
AFTER = timedelta(days=1461)
HELSINKI = ZoneInfo("Europe/Helsinki")


@pytest.fixture(scope="module")
def settings(stack: Stack) -> NotificationsSettings:
    return delivering_settings(stack, win_back_days=str(AFTER.days))


async def win_back_rows(database: AsyncEngine, customer_id: str) -> list[sa.Row[Any]]:
    async with database.connect() as conn:
        result = await conn.execute(
            sa.select(deliveries).where(
                deliveries.c.customer_id == customer_id,
                deliveries.c.template.in_(["win_back", "win_back_offer"]),
            )
        )
        return list(result)


async def activity(database: AsyncEngine, customer_id: str) -> sa.Row[Any] | None:
    async with database.connect() as conn:
        result = await conn.execute(
            sa.select(purchase_activity).where(purchase_activity.c.customer_id == customer_id)
        )
        return result.first()


async def test_the_offer_is_mailed_and_the_job_tells_that_lapse_no_more(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, email = new_customer()
    await send(
        stack,
        topics.CUSTOMERS,
        factories.enrolment(
            customer_id,
            email=email,
            locale="en",
            time_zone=HELSINKI.key,
            consent=events.Consent(email=True),
        ),
    )
    now = datetime.now(UTC).replace(microsecond=0)
    bought = now - AFTER - timedelta(days=10)
    await send(
        stack,
        topics.PURCHASES,
        factories.purchase(customer_id, "20.00", at=bought, purchase_id=f"p-{customer_id}"),
    )

    async def recorded() -> bool:
        row = await activity(database, customer_id)
        return row is not None and row.last_purchase_at == bought

    await eventually(recorded, within=60, what="the purchase recorded")

    # Ends at midnight UTC: 02:00 in Helsinki, so the member's last day is that date itself.
    last_day = (now + timedelta(days=14)).date()
    ends_at = datetime.combine(last_day, time(0), tzinfo=UTC)
    granted = events.PointsOfferGranted(
        offer_id=f"offer-{customer_id}",
        customer_id=customer_id,
        reason="win_back",
        name="Welcome back",
        multiplier=Decimal("2"),
        bonus=150,
        starts_at=now,
        ends_at=ends_at,
    )
    event = new_event(granted, source="points", subject=customer_id, time=now)
    await send(stack, topics.POINTS, event)
    await send(stack, topics.POINTS, event)  # redelivered: one message still

    expected = f"A gift for you: double points and 150 bonus points until {long(last_day)}"

    async def mailed() -> list[str] | None:
        # A subject this long is folded before its first word; the parser keeps that space.
        found = [
            str(m["Subject"]).strip() for m in mails_to(stack, email) if "gift" in str(m["Subject"])
        ]
        return found or None

    subjects = await eventually(mailed, within=60, what="the win-back offer's email")
    assert subjects == [expected]
    [mail] = [m for m in mails_to(stack, email) if "gift" in str(m["Subject"])]
    plain = mail.get_body(("plain",))
    assert plain is not None
    assert (
        "you get double points and 150 bonus points on every purchase until "
        f"{long(last_day)}." in plain.get_content()
    )

    # The lapse the offer told of is marked; the job sends no plain win-back for it.
    row = await activity(database, customer_id)
    assert row is not None and row.win_back_for == bought
    await run_job(client, "win-back", now)

    async def told() -> list[tuple[str, str]] | None:
        found = [(r.template, r.status) for r in await win_back_rows(database, customer_id)]
        return found if all(status != "scheduled" for _, status in found) else None

    assert await eventually(told, within=30, what="the offer recorded as sent") == [
        ("win_back_offer", "sent")
    ]


def long(day: date) -> str:
    return format_date(day, format="long", locale="en")
