"""Win-back on the real stack: the last purchase times come from the purchases topic, the
job run as of an instant sends one message per lapse, and a second run changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.adapters.tables import deliveries, purchase_activity
from services.notifications.settings import NotificationsSettings
from shared.messaging import topics
from shared.messaging.events import CloudEvent
from tests.integration.notifications.test_notifications_never_harass import enrolment
from tests.support import factories
from tests.support.notifications import mails_to, new_customer, run_job, send, zone_at
from tests.support.polling import eventually
from tests.support.services import settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

AFTER = timedelta(days=1461)  # 4 years: jobs run at most 5 years ahead (shared.web.jobs_api)


@pytest.fixture(scope="module")
def settings(stack: Stack) -> NotificationsSettings:
    stack.migrate("notifications")
    # A lapse far longer than the time the test's purchases go back: the service's own
    # schedule runs the job as of now, and must not see a lapse before the test does.
    return settings_for(
        NotificationsSettings,
        stack,
        "notifications",
        dispatch_interval_seconds="0.05",
        win_back_days=str(AFTER.days),
    )


def purchase(customer_id: str, occurred_at: datetime) -> CloudEvent:
    return factories.purchase(
        customer_id,
        "20.00",
        at=occurred_at,
        purchase_id=f"p-{customer_id}-{occurred_at.timestamp():.0f}",
    )


async def last_purchase(database: AsyncEngine, customer_id: str) -> datetime | None:
    async with database.connect() as conn:
        found = await conn.scalar(
            sa.select(purchase_activity.c.last_purchase_at).where(
                purchase_activity.c.customer_id == customer_id
            )
        )
    assert found is None or isinstance(found, datetime)
    return found


async def win_backs(database: AsyncEngine, customer_id: str) -> list[sa.Row[Any]]:
    async with database.connect() as conn:
        result = await conn.execute(
            sa.select(deliveries).where(
                deliveries.c.customer_id == customer_id, deliveries.c.template == "win_back"
            )
        )
        return list(result)


async def test_one_win_back_per_lapse(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, email = new_customer()
    await send(stack, topics.CUSTOMERS, enrolment(customer_id, email, zone_at(12)))
    now = datetime.now(UTC).replace(microsecond=0)
    first_purchase = now - timedelta(days=200)
    await send(stack, topics.PURCHASES, purchase(customer_id, first_purchase))

    async def recorded(expected: datetime) -> bool:
        return await last_purchase(database, customer_id) == expected

    await eventually(lambda: recorded(first_purchase), within=60, what="the purchase recorded")

    not_yet = first_purchase + AFTER - timedelta(seconds=1)
    await run_job(client, "win-back", not_yet)
    assert await win_backs(database, customer_id) == []

    lapsed = first_purchase + AFTER
    first = await run_job(client, "win-back", lapsed)
    assert first["scheduled"] >= 1
    again = await run_job(client, "win-back", lapsed)
    assert (again["lapsed"], again["scheduled"]) == (0, 0)
    await run_job(client, "win-back", lapsed + timedelta(days=30))  # later, the same lapse
    assert len(await win_backs(database, customer_id)) == 1

    async def mailed() -> bool:
        return any(m["Subject"] == "We miss you" for m in mails_to(stack, email))

    await eventually(mailed, within=60, what="the win-back email")

    # An older purchase delivered late is no new purchase; a newer one starts a new lapse.
    await send(stack, topics.PURCHASES, purchase(customer_id, first_purchase - timedelta(days=1)))
    second_purchase = now - timedelta(days=100)
    await send(stack, topics.PURCHASES, purchase(customer_id, second_purchase))
    await eventually(lambda: recorded(second_purchase), within=60, what="the new purchase")
    await run_job(client, "win-back", second_purchase + AFTER - timedelta(days=1))
    assert len(await win_backs(database, customer_id)) == 1
    lapsed_again = second_purchase + AFTER
    assert (await run_job(client, "win-back", lapsed_again))["scheduled"] >= 1
    assert (await run_job(client, "win-back", lapsed_again))["scheduled"] == 0
    assert len(await win_backs(database, customer_id)) == 2
