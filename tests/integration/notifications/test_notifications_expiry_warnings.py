"""Expiry warnings merged per customer and local day through the real consumer: points
publishes one `points.expiring` per lot, redelivered too; the customer gets one email with
the total and the date, and a lot of the same day arriving after it went out is not told
again."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from babel.dates import format_date
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.settings import NotificationsSettings
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent, new_event
from tests.support import factories
from tests.support.notifications import new_customer, rows, send, zone_at
from tests.support.polling import eventually
from tests.support.services import settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(stack: Stack) -> NotificationsSettings:
    stack.migrate("notifications")
    return settings_for(
        NotificationsSettings,
        stack,
        "notifications",
        dispatch_interval_seconds="0.05",
        # Three seconds past the window's last lot: the test's lots all expire in the last
        # seconds of one local day, so the merged warning goes out within seconds.
        expiry_warning_hold_minutes="0.05",
    )


def expiring(customer_id: str, points: int, expires_at: datetime) -> CloudEvent:
    payload = events.PointsExpiring(customer_id=customer_id, points=points, expires_at=expires_at)
    return new_event(payload, source="points", subject=customer_id, time=datetime.now(UTC))


def strict_mails_to(stack: Stack, address: str) -> list[EmailMessage]:
    found = []
    for path in sorted(stack.mail_dir.glob("*.eml")):
        message = BytesParser(policy=policy.strict).parsebytes(path.read_bytes())
        assert isinstance(message, EmailMessage)
        if message["To"] == address:
            found.append(message)
    return found


async def test_the_lots_of_one_local_day_make_one_email_with_the_total_and_the_date(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, email = new_customer()
    zone = zone_at(12)  # noon for them: no quiet hours in the way
    await send(
        stack,
        topics.CUSTOMERS,
        factories.enrolment(
            customer_id,
            email=email,
            locale="it",
            time_zone=zone.key,
            consent=events.Consent(email=True),
        ),
    )

    async def welcomed() -> bool:
        return any(r.status == "sent" for r in await rows(database, customer_id))

    # The profile comes on another topic: the warnings follow it, as months of lots do.
    await eventually(welcomed, within=60, what="the welcome (the contact and its time zone)")
    # Three lots in the last seconds of the customer's day 30 days from now.
    day = datetime.now(zone).date() + timedelta(days=30)
    midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    lots = [
        expiring(customer_id, p, midnight - timedelta(seconds=s))
        for p, s in ((100, 9), (20, 7), (3, 5))
    ]
    for lot in [*lots, lots[1]]:  # the second one redelivered
        await send(stack, topics.POINTS, lot)

    async def sent() -> sa.Row[Any] | None:
        found = [r for r in await rows(database, customer_id) if r.template == "points_expiring"]
        return found[0] if len(found) == 1 and found[0].status == "sent" else None

    warning = await eventually(sent, within=60, what="the merged expiry warning sent")
    assert warning.params["points"] == 123
    assert warning.params["warnings"] == 3
    assert sorted(warning.params["warning_ids"]) == sorted(lot.id for lot in lots)
    assert warning.params["expires_on"] == day.isoformat()

    async def mailed() -> EmailMessage | None:
        found = [m for m in strict_mails_to(stack, email) if "scadono" in str(m["Subject"])]
        return found[0] if found else None

    message = await eventually(mailed, within=30, what="the merged warning's email")
    date_it = format_date(day, format="long", locale="it")
    assert message["Subject"] == f"123 punti scadono il {date_it}"

    # A lot of the same day after the message went out: not told again. The redemption after
    # it on the same partition shows when the consumer has passed it.
    late = expiring(customer_id, 40, midnight - timedelta(seconds=2))
    await send(stack, topics.POINTS, late)
    marker = events.PointsRedeemed(
        customer_id=customer_id, points=1, redemption_id="r-marker", reward="Caffè"
    )
    await send(
        stack,
        topics.POINTS,
        new_event(marker, source="points", subject=customer_id, time=datetime.now(UTC)),
    )

    async def marker_seen() -> list[sa.Row[Any]] | None:
        found = await rows(database, customer_id)
        return found if any(r.template == "redemption_confirmed" for r in found) else None

    found = await eventually(marker_seen, within=60, what="the events after the late lot")
    warnings = [r for r in found if r.template == "points_expiring"]
    assert [(r.status, r.params["points"]) for r in warnings] == [("sent", 123)]
