"""A partner's point of sale: signs its calls to ingest exactly as a real POS must, and reads
the services' answers with the read token. The demo flow of `fedelta demo` lives here too."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from fedelta_cli.devenv import DevEnv
from shared.web.auth import SIGNATURE_HEADER, sign


class PosClient:
    """Signs each call with the partner's secret:
    `t=<unix>,v1=HMAC-SHA256("<t>.<METHOD>.<path?query>.<raw body>")`."""

    def __init__(self, env: DevEnv, http: httpx.AsyncClient) -> None:
        self.env = env
        self.http = http

    async def send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | bytes,
        *,
        signed_at: int | None = None,
        secret: str | None = None,
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        timestamp = signed_at if signed_at is not None else int(time.time())
        url = httpx.URL(f"{self.env.ingest_url}{path}")
        return await self.http.request(
            method,
            url,
            content=raw,
            headers={
                "Authorization": f"Bearer {self.env.partner_key}",
                SIGNATURE_HEADER: signed(
                    secret if secret is not None else self.env.partner_secret,
                    timestamp,
                    method,
                    url,
                    raw,
                ),
                "Content-Type": "application/json",
            },
        )

    async def post(
        self, path: str, body: dict[str, Any] | bytes, *, signed_at: int | None = None
    ) -> httpx.Response:
        return await self.send("POST", path, body, signed_at=signed_at)

    async def patch(
        self, path: str, body: dict[str, Any] | bytes, *, signed_at: int | None = None
    ) -> httpx.Response:
        return await self.send("PATCH", path, body, signed_at=signed_at)

    async def enrol(
        self,
        customer_id: str,
        email: str | None,
        consent: bool = True,
        time_zone: str = "Europe/Rome",
    ) -> str:
        response = await self.post(
            "/v1/customers",
            {
                "customer_id": customer_id,
                "email": email,
                "locale": "en",
                "time_zone": time_zone,
                "consent": {"email": consent, "sms": False},
            },
        )
        return _event_id(response)

    async def purchase(
        self,
        customer_id: str,
        total: str,
        purchase_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> str:
        response = await self.post(
            "/v1/purchases",
            {
                "purchase_id": purchase_id or f"p-{uuid.uuid4()}",
                "customer_id": customer_id,
                "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(),
                "currency": "EUR",
                "total": total,
            },
        )
        return _event_id(response)

    async def read(self, url: str, params: dict[str, str] | None = None) -> httpx.Response:
        return await self.http.get(
            url, params=params, headers={"Authorization": f"Bearer {self.env.read_token}"}
        )

    async def admin_post(
        self,
        url: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return await self.http.post(
            url,
            json=body,
            params=params,
            headers={"Authorization": f"Bearer {self.env.admin_token}", **(headers or {})},
        )

    async def balance(self, customer_id: str) -> httpx.Response:
        return await self.read(f"{self.env.points_url}/v1/customers/{customer_id}/balance")

    async def ledger(
        self, customer_id: str, limit: int = 200, cursor: str | None = None
    ) -> httpx.Response:
        params = {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
        return await self.read(
            f"{self.env.points_url}/v1/customers/{customer_id}/ledger", params=params
        )

    async def tier(self, customer_id: str) -> httpx.Response:
        return await self.read(f"{self.env.tiers_url}/v1/customers/{customer_id}/tier")

    async def notifications(self, customer_id: str) -> httpx.Response:
        return await self.read(
            f"{self.env.notifications_url}/v1/customers/{customer_id}/notifications"
        )


def signed(secret: str, timestamp: int, method: str, url: httpx.URL, body: bytes) -> str:
    """The signature header for a call to `url`: over the path and query exactly as httpx
    will put them on the request line (`raw_path` is both, percent-encoded)."""
    return sign(secret, timestamp, method, url.raw_path, body)


def _event_id(response: httpx.Response) -> str:
    if response.status_code != 202:
        raise SystemExit(f"ingest answered {response.status_code}: {response.text}")
    event_id: str = response.json()["event_id"]
    return event_id


async def show(pos: PosClient, customer_id: str) -> None:
    for name, response in (
        ("balance", await pos.balance(customer_id)),
        ("tier", await pos.tier(customer_id)),
        ("notifications", await pos.notifications(customer_id)),
    ):
        print(f"{name}: {response.status_code} {json.dumps(response.json(), indent=2)}")


# Spread round the world, so that in one of them it is day whenever the demo runs.
DEMO_TIME_ZONES = ("Europe/Rome", "America/New_York", "America/Los_Angeles", "Asia/Tokyo")


def time_zone_in_daytime(now: datetime) -> str:
    """A time zone where it is between 09:00 and 19:00 now: notifications never writes to a
    customer in their quiet hours (21:00-08:00 by default), and the demo wants its emails now."""
    for name in DEMO_TIME_ZONES:
        if 9 <= now.astimezone(ZoneInfo(name)).hour < 19:
            return name
    return DEMO_TIME_ZONES[0]


async def demo(pos: PosClient) -> None:
    """Enrol a customer where it is daytime, two purchases, then balance, tier and mail."""
    customer = f"demo-{uuid.uuid4().hex[:8]}"
    email = f"{customer}@example.com"
    zone = time_zone_in_daytime(datetime.now(UTC))
    print(
        f"enrol {customer} <{email}> in {zone}, where it is daytime (quiet hours are respected), "
        "with email consent:",
        await pos.enrol(customer, email, time_zone=zone),
    )
    print("purchase 300.00 EUR:", await pos.purchase(customer, "300.00"))
    print("purchase 250.00 EUR:", await pos.purchase(customer, "250.00"))
    deadline = time.monotonic() + 60
    mails: list[Path] = []
    while time.monotonic() < deadline:
        balance, tier = await pos.balance(customer), await pos.tier(customer)
        mails = [p for p in sorted(pos.env.mail_dir.glob("*.eml")) if email in p.read_text()]
        if (
            balance.status_code == 200
            and balance.json()["available"] == 650
            and tier.status_code == 200
            and tier.json()["tier"] == "silver"
            and len(mails) >= 2
        ):
            break
        await asyncio.sleep(0.3)
    await show(pos, customer)
    print(f"mail to {email}: {len(mails)} message(s)")
    for path in mails:
        print(f"  {path}")
