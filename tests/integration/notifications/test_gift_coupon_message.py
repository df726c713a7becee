"""A gift coupon on the real stack (issue 20): `coupon.issued` naming an engagement grant, from
Kafka, reaches the member as a gift (no points spent said), with its code read from a real HTTP
server standing in for points' `GET /v1/coupons/{id}`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.settings import NotificationsSettings
from shared.messaging import events, topics
from shared.messaging.events import new_event
from tests.integration.notifications.test_coupon_messages import enrol, new_member, raw_mails_to
from tests.support.notifications import (
    PointsStandIn,
    coupon_answer,
    delivering_settings,
    points_stand_in,
    send,
)
from tests.support.polling import eventually
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

POINTS_TOKEN = "points-read-token-for-the-gift-tests"


@pytest.fixture(scope="module")
def points() -> Iterator[PointsStandIn]:
    with points_stand_in(POINTS_TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def settings(stack: Stack, points: PointsStandIn) -> NotificationsSettings:
    return delivering_settings(
        stack,
        points_url=points.url,
        points_token=POINTS_TOKEN,
        points_timeout_seconds="2",
        retry_backoff_seconds="0.2",
        retry_backoff_max_seconds="1",
    )


async def test_a_gift_coupon_reaches_the_member_as_a_gift_with_its_code(
    stack: Stack,
    client: httpx.AsyncClient,
    database: AsyncEngine,
    points: PointsStandIn,
) -> None:
    customer_id, email, _ = new_member()
    code = f"FDL{uuid.uuid4().hex[:13].upper()}"
    await enrol(stack, database, customer_id, email)
    coupon_id, grant_id = f"cp-{uuid.uuid4()}", f"g-{uuid.uuid4()}"
    expires_at = (datetime.now(UTC) + timedelta(days=14)).replace(microsecond=0)
    points.coupons[coupon_id] = coupon_answer(coupon_id, customer_id, code, expires_at)
    issued = events.CouponIssued(
        coupon_id=coupon_id,
        customer_id=customer_id,
        redemption_id=grant_id,
        reward_id="rw-coffee",
        reward="Free coffee",
        points=0,
        expires_at=expires_at,
        grant_id=grant_id,
    )
    event = new_event(issued, source="points", subject=customer_id, time=datetime.now(UTC))
    await send(stack, topics.POINTS, event)

    async def gift_mail() -> bytes | None:
        found = [m for m in raw_mails_to(stack, email) if code.encode() in m]
        return found[0] if found else None

    raw = await eventually(gift_mail, within=60, what="the gift coupon's email in the catcher")
    parsed = BytesParser(policy=policy.strict).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    plain = parsed.get_body(("plain",))
    assert plain is not None
    text = plain.get_content()
    assert "Free coffee is our gift to you" in text and f"Your coupon code is {code}" in text
    assert "redeemed" not in text and "points" not in text
