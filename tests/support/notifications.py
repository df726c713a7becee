"""What the notifications integration tests share: events as the other services publish
them, new customers, the caught mail, the delivery rows and the jobs run as of an instant."""

from __future__ import annotations

import contextlib
import json
import struct
import threading
import urllib.parse
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.adapters.tables import deliveries
from services.notifications.settings import NotificationsSettings
from shared.messaging import events
from shared.messaging.events import CloudEvent, new_event
from tests.support.kafka import publish
from tests.support.services import ADMIN, settings_for
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
    await publish(stack.kafka, topic, event.subject, event)


def mails_to(stack: Stack, address: str) -> list[EmailMessage]:
    found = []
    for path in sorted(stack.mail_dir.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        if message["To"] == address:
            found.append(message)
    return found


def new_customer() -> tuple[str, str]:
    """A customer id and an email address of their own."""
    token = uuid.uuid4().hex
    return f"cust-{token}", f"{token}@example.com"


def zone_at(local_hour: int) -> ZoneInfo:
    """A fixed-offset zone whose wall clock shows `local_hour` now, whatever the real time:
    the service runs on the system clock, so the customer's zone puts them where the test
    needs them (Etc/GMT-N is UTC+N)."""
    offset = (local_hour - datetime.now(UTC).hour) % 24
    if offset > 14:
        offset -= 24
    return ZoneInfo("Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}")


async def rows(database: AsyncEngine, customer_id: str) -> list[sa.Row[Any]]:
    """The customer's rows in the delivery log."""
    async with database.connect() as conn:
        result = await conn.execute(
            sa.select(deliveries).where(deliveries.c.customer_id == customer_id)
        )
        return list(result)


async def run_job(client: httpx.AsyncClient, name: str, as_of: datetime) -> dict[str, Any]:
    response = await client.post(
        f"/v1/admin/jobs/{name}", params={"as_of": as_of.isoformat()}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    [summary] = response.json()["jobs"]
    assert isinstance(summary, dict)
    return summary


def delivering_settings(stack: Stack, **overrides: str) -> NotificationsSettings:
    """Notifications that delivers whatever the time of day a test runs at: no quiet hours, a
    generous daily cap and a fast dispatcher (never-harass has tests of its own), migrated."""
    stack.migrate("notifications")
    chosen = {
        "dispatch_interval_seconds": "0.05",
        "quiet_hours_start": "00:00",
        "quiet_hours_end": "00:00",
        "daily_cap": "100",
        **overrides,
    }
    return settings_for(NotificationsSettings, stack, "notifications", **chosen)


# -- Coupons (issue 18): points' events, a stand-in points API, the QR image -----------------


def points_redeemed(
    customer_id: str,
    *,
    points: int = 500,
    reward: str = "Coffee voucher",
    reward_id: str | None = None,
    redemption_id: str | None = None,
    at: datetime | None = None,
) -> CloudEvent:
    """points.redeemed as points emits it: with `reward_id` for a reward of the catalogue
    (its coupon.issued follows), without for a free-form redemption."""
    at = at or datetime.now(UTC)
    return new_event(
        events.PointsRedeemed(
            customer_id=customer_id,
            points=points,
            redemption_id=redemption_id or f"r-{uuid.uuid4()}",
            reward=reward,
            reward_id=reward_id,
        ),
        source="points",
        subject=customer_id,
        time=at,
    )


def coupon_issued(
    customer_id: str,
    *,
    coupon_id: str | None = None,
    points: int = 500,
    reward: str = "Coffee voucher",
    reward_id: str = "rw-coffee",
    redemption_id: str | None = None,
    expires_at: datetime | None = None,
    at: datetime | None = None,
) -> CloudEvent:
    """coupon.issued as points emits it, after the redemption's points.redeemed: an id, never
    the code."""
    at = at or datetime.now(UTC)
    return new_event(
        events.CouponIssued(
            coupon_id=coupon_id or f"cp-{uuid.uuid4()}",
            customer_id=customer_id,
            redemption_id=redemption_id or f"r-{uuid.uuid4()}",
            reward_id=reward_id,
            reward=reward,
            points=points,
            expires_at=expires_at or at + timedelta(days=30),
        ),
        source="points",
        subject=customer_id,
        time=at,
    )


def coupon_answer(
    coupon_id: str, customer_id: str, code: str, expires_at: datetime
) -> dict[str, Any]:
    """Points' `GET /v1/coupons/{coupon_id}` answer, as the interface gives it."""
    return {
        "coupon_id": coupon_id,
        "customer_id": customer_id,
        "reward_id": "rw-coffee",
        "reward": "Coffee voucher",
        "code": code,
        "status": "issued",
        "expires_at": expires_at.isoformat(),
        "points": 500,
    }


@dataclass
class PointsStandIn:
    """A real HTTP server in place of points' coupon route: `GET /v1/coupons/{id}` with the
    bearer `token` answers `coupons[id]` (200), `statuses[id]` when set (e.g. 503), or 404;
    a wrong token gets 401. Every call is recorded (path and whether the token was right)."""

    token: str
    url: str = ""
    coupons: dict[str, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    calls: list[tuple[str, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, authorization: str | None) -> tuple[int, bytes]:
        authorised = authorization == f"Bearer {self.token}"
        coupon_id = urllib.parse.unquote(path.removeprefix("/v1/coupons/"))
        with self.lock:
            self.calls.append((path, authorised))
            if not authorised:
                return 401, b'{"title": "Unauthorized"}'
            if not path.startswith("/v1/coupons/"):
                return 404, b'{"title": "Not found"}'
            status = self.statuses.get(coupon_id)
            if status is not None:
                return status, b'{"title": "Unavailable"}'
            coupon = self.coupons.get(coupon_id)
        if coupon is None:
            return 404, b'{"title": "Not found", "detail": "no such coupon"}'
        return 200, json.dumps(coupon).encode()

    def calls_for(self, coupon_id: str) -> int:
        with self.lock:
            return sum(1 for path, _ in self.calls if path == f"/v1/coupons/{coupon_id}")


@contextlib.contextmanager
def points_stand_in(token: str) -> Iterator[PointsStandIn]:
    state = PointsStandIn(token=token)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            status, body = state.answer(self.path, self.headers.get("Authorization"))
            content_type = "application/json" if status == 200 else "application/problem+json"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_rows(data: bytes) -> tuple[int, int, list[list[int]]]:
    """A greyscale PNG (bit depth 1 or 8, not interlaced) decoded by the book (RFC 2083):
    width, height and the rows of sample values (0 black); every chunk's CRC is checked, the
    five row filters are undone."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    offset, chunks = 8, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        offset += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert colour == 0 and depth in (1, 8) and interlace == 0, (colour, depth, interlace)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = (width * depth + 7) // 8
    rows: list[list[int]] = []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for x in range(stride):
            left = line[x - 1] if x else 0
            up, corner = previous[x], previous[x - 1] if x else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                near = min((abs(guess - left), 0), (abs(guess - up), 1), (abs(guess - corner), 2))
                line[x] = (line[x] + (left, up, corner)[near[1]]) & 0xFF
        previous = line
        if depth == 8:
            rows.append(list(line[:width]))
        else:
            rows.append([(line[x // 8] >> (7 - x % 8)) & 1 for x in range(width)])
    return width, height, rows


def qr_modules(data: bytes, *, scale: int = 4, border: int = 4) -> list[list[bool]]:
    """The modules of a QR symbol drawn `scale` pixels a module inside a `border`-module quiet
    zone (checked white), dark as True, read from the centre of each module."""
    width, height, rows = png_rows(data)
    assert width == height and width % scale == 0
    size = width // scale - 2 * border
    for y in range(height):
        for x in range(width):
            inside = border * scale <= min(x, y) and max(x, y) < (border + size) * scale
            assert inside or rows[y][x] != 0, "the quiet zone must be white"
    centre = scale // 2
    return [
        [
            rows[(border + r) * scale + centre][(border + c) * scale + centre] == 0
            for c in range(size)
        ]
        for r in range(size)
    ]
