"""A reward's coupon on the real stack: points.redeemed and coupon.issued from Kafka, the code
read from a real HTTP server standing in for points' `GET /v1/coupons/{id}`, the email read
back as the real SMTP catcher received its bytes (strictly parsed, the QR part a PNG whose
modules are the code's), the SMS from the fake provider; points answering 503 makes the
message wait until it is back, an unknown coupon fails it; the preview over HTTP."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import segno
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.settings import NotificationsSettings
from shared.messaging import events, topics
from tests.support import factories
from tests.support.notifications import (
    PNG_SIGNATURE,
    PointsStandIn,
    coupon_answer,
    coupon_issued,
    delivering_settings,
    png_rows,
    points_redeemed,
    points_stand_in,
    qr_modules,
    rows,
    send,
)
from tests.support.polling import eventually
from tests.support.services import READER
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

POINTS_TOKEN = "points-read-token-for-the-tests"


@pytest.fixture(scope="module")
def points() -> Iterator[PointsStandIn]:
    with points_stand_in(POINTS_TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def settings(stack: Stack, points: PointsStandIn) -> NotificationsSettings:
    # A short backoff: a message waiting for points is tried again quickly.
    return delivering_settings(
        stack,
        points_url=points.url,
        points_token=POINTS_TOKEN,
        points_timeout_seconds="2",
        retry_backoff_seconds="0.2",
        retry_backoff_max_seconds="1",
    )


def new_member() -> tuple[str, str, str]:
    token = uuid.uuid4().hex
    phone = f"+39{int(token[:12], 16) % 10**10:010d}"
    return f"cust-{token}", f"{token}@example.com", phone


async def enrol(
    stack: Stack,
    database: AsyncEngine,
    customer_id: str,
    email: str,
    phone: str | None = None,
) -> None:
    """Enrols the member and waits until notifications holds their contact (their welcome is
    scheduled with it), so that their coupon's message goes out on each of their channels."""
    await send(
        stack,
        topics.CUSTOMERS,
        factories.enrolment(
            customer_id,
            email=email,
            phone=phone,
            locale="en",
            time_zone="UTC",
            consent=events.Consent(email=True, sms=phone is not None),
        ),
    )

    async def welcomed() -> bool:
        return any(r.template == "welcome" for r in await rows(database, customer_id))

    await eventually(welcomed, within=60, what="the member's contact in notifications")


async def redeem(
    stack: Stack, points: PointsStandIn, customer_id: str, code: str | None
) -> tuple[str, datetime]:
    """A reward's redemption as points publishes it (points.redeemed, then coupon.issued, on
    the customer's partition), its coupon known to the stand-in when `code` is given."""
    coupon_id = f"cp-{uuid.uuid4()}"
    expires_at = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    if code is not None:
        points.coupons[coupon_id] = coupon_answer(coupon_id, customer_id, code, expires_at)
    redemption_id = f"r-{uuid.uuid4()}"
    await send(
        stack,
        topics.POINTS,
        points_redeemed(customer_id, reward_id="rw-coffee", redemption_id=redemption_id),
    )
    await send(
        stack,
        topics.POINTS,
        coupon_issued(
            customer_id,
            coupon_id=coupon_id,
            redemption_id=redemption_id,
            expires_at=expires_at,
        ),
    )
    return coupon_id, expires_at


def raw_mails_to(stack: Stack, address: str) -> list[bytes]:
    """The messages the catcher received for this address, as sent (after its X-Envelope-*
    lines)."""
    found = []
    for path in sorted(stack.mail_dir.glob("*.eml")):
        raw = path.read_bytes()
        if f"X-Envelope-To: {address}\r\n".encode() in raw.split(b"\r\n\r\n", 1)[0] + b"\r\n":
            found.append(raw.split(b"\r\n", 2)[2])
    return found


def sms_to(stack: Stack, phone: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted(Path(stack.sms_dir).glob("*.json")):
        message: dict[str, Any] = json.loads(path.read_text())
        if message["to"] == phone:
            found.append(message)
    return found


async def coupon_rows(database: AsyncEngine, customer_id: str) -> list[Any]:
    return [r for r in await rows(database, customer_id) if r.template == "redemption_confirmed"]


async def test_the_coupon_reaches_the_member_as_text_and_a_qr_image_in_valid_bytes(
    stack: Stack,
    client: httpx.AsyncClient,
    database: AsyncEngine,
    points: PointsStandIn,
) -> None:
    customer_id, email, phone = new_member()
    code = f"FDL{uuid.uuid4().hex[:13].upper()}"
    await enrol(stack, database, customer_id, email, phone)
    coupon_id, _ = await redeem(stack, points, customer_id, code)

    async def coupon_mail() -> bytes | None:
        found = [m for m in raw_mails_to(stack, email) if code.encode() in m]
        return found[0] if found else None

    raw = await eventually(coupon_mail, within=60, what="the coupon's email in the catcher")

    lines = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert all(line.isascii() and len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"MIME-Version: 1.0" in lines
    parsed = BytesParser(policy=policy.strict).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    for part in parsed.walk():
        for name in part:
            assert part[name].defects == (), (part.get_content_type(), name)
    assert parsed["Subject"] == "Your reward is confirmed"
    assert code not in str(parsed["Subject"])
    plain = parsed.get_body(("plain",))
    assert plain is not None and f"Your coupon code is {code}" in plain.get_content()
    [related] = [p for p in parsed.walk() if p.get_content_type() == "multipart/related"]
    html, image = related.iter_parts()
    assert html.get_content_type() == "text/html" and image.get_content_type() == "image/png"
    content_id = str(image["Content-ID"])
    assert content_id.startswith("<") and content_id.endswith(">")
    assert f'src="cid:{content_id[1:-1]}"' in html.get_content()
    png = image.get_content()
    assert isinstance(png, bytes) and png.startswith(PNG_SIGNATURE)
    symbol = segno.make(code, error="m", micro=False)
    assert png_rows(png)[:2] == symbol.symbol_size(scale=4, border=4)
    assert qr_modules(png) == [[bool(v) for v in row] for row in symbol.matrix]

    async def the_sms() -> list[dict[str, Any]] | None:
        found = [m for m in sms_to(stack, phone) if code in m["text"]]
        return found or None

    (sms,) = await eventually(the_sms, within=60, what="the coupon's SMS")
    assert sms["text"].startswith("Fedelta: Your reward is confirmed. Coupon code ")

    async def all_sent() -> list[Any] | None:
        found = await coupon_rows(database, customer_id)
        return found if {r.status for r in found} == {"sent"} and len(found) >= 2 else None

    sent = await eventually(all_sent, within=60, what="the coupon's messages recorded as sent")
    # One message per channel, from coupon.issued: points.redeemed of a reward says nothing.
    assert sorted(r.channel for r in sent) == ["email", "sms"]
    assert len({r.cause_event_id for r in sent}) == 1
    for row in sent:
        assert row.params["coupon_id"] == coupon_id
        assert code not in json.dumps(row.params) and "code" not in row.params
    assert points.calls_for(coupon_id) >= 1
    assert all(authorised for path, authorised in points.calls if coupon_id in path)


async def test_while_points_answers_503_the_message_waits_and_goes_out_once_it_is_back(
    stack: Stack,
    client: httpx.AsyncClient,
    database: AsyncEngine,
    points: PointsStandIn,
) -> None:
    customer_id, email, _ = new_member()
    code = f"FDL{uuid.uuid4().hex[:13].upper()}"
    await enrol(stack, database, customer_id, email)
    coupon_id = f"cp-{uuid.uuid4()}"
    expires_at = datetime.now(UTC) + timedelta(days=30)
    points.statuses[coupon_id] = 503
    points.coupons[coupon_id] = coupon_answer(coupon_id, customer_id, code, expires_at)
    await send(
        stack,
        topics.POINTS,
        coupon_issued(customer_id, coupon_id=coupon_id, expires_at=expires_at),
    )

    async def retried() -> Any | None:
        found = await coupon_rows(database, customer_id)
        return found[0] if found and found[0].attempts >= 2 else None

    waiting = await eventually(retried, within=60, what="the coupon's message retried")
    assert (waiting.status, waiting.last_error) == ("scheduled", "points unavailable (HTTP 503)")
    assert raw_mails_to(stack, email) == [] or all(
        code.encode() not in m for m in raw_mails_to(stack, email)
    )

    del points.statuses[coupon_id]

    async def sent() -> Any | None:
        found = await coupon_rows(database, customer_id)
        return found[0] if found and found[0].status == "sent" else None

    row = await eventually(sent, within=60, what="the coupon's message once points is back")
    assert row.last_error is None
    assert [m for m in raw_mails_to(stack, email) if code.encode() in m]


async def test_a_coupon_points_does_not_know_fails_its_message(
    stack: Stack,
    client: httpx.AsyncClient,
    database: AsyncEngine,
    points: PointsStandIn,
) -> None:
    customer_id, email, _ = new_member()
    await enrol(stack, database, customer_id, email)
    coupon_id, _ = await redeem(stack, points, customer_id, code=None)

    async def failed() -> Any | None:
        found = await coupon_rows(database, customer_id)
        return found[0] if found and found[0].status == "failed" else None

    row = await eventually(failed, within=60, what="the unknown coupon's message failed")
    assert (row.attempts, row.last_error) == (1, "unknown coupon (points answered 404)")
    assert points.calls_for(coupon_id) == 1
    response = await client.get(f"/v1/customers/{customer_id}/notifications", headers=READER)
    items = [i for i in response.json()["items"] if i["template"] == "redemption_confirmed"]
    assert [i["status"] for i in items] == ["failed"]


async def test_the_preview_shows_a_sample_code_and_its_qr_code(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/templates/redemption_confirmed/preview", params={"locale": "it"}, headers=READER
    )
    assert response.status_code == 200, response.text
    shown = response.json()
    assert shown["locale"] == "it"
    assert "Il tuo codice coupon è FDL7-K2QM-9XWA-3HTR" in shown["text"]
    prefix = '<img src="data:image/png;base64,'
    assert prefix in shown["html"]
    encoded = shown["html"].split(prefix, 1)[1].split('"', 1)[0]
    assert base64.b64decode(encoded).startswith(PNG_SIGNATURE)
