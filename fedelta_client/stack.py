"""A client of a whole stack described by a `DevEnv` (`.fedelta/dev.env`, written by `make
up`): its partner's till and the read and admin tokens over one httpx client. What the
`fedelta` command, the benchmarks and the end-to-end tests talk to a local stack with. Each
client sends every service that service's own token."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from fedelta_client.answers import json_object
from fedelta_client.devenv import DevEnv
from fedelta_client.internal import InternalClient, ServiceUrls, When
from fedelta_client.pos import PosClient, new_idempotency_key
from fedelta_client.retry import RetryPolicy


class StackClient(PosClient):
    """The POS calls of `PosClient` for the dev.env's partner, plus `reader` (the services'
    read tokens), `operator` (operate tokens) and `admin` (admin tokens), with the reads a
    test or a check makes most at hand."""

    def __init__(
        self, env: DevEnv, http: httpx.AsyncClient, *, retry: RetryPolicy | None = None
    ) -> None:
        super().__init__(
            http,
            ingest_url=env.ingest_url,
            partner_key=env.partner_key,
            partner_secret=env.partner_secret,
            retry=retry,
        )
        self.env = env
        urls = service_urls(env)
        self.reader = InternalClient(http, urls=urls, tokens=env.tokens_of("read"))
        self.operator = InternalClient(http, urls=urls, tokens=env.tokens_of("operate"))
        self.admin = InternalClient(http, urls=urls, tokens=env.tokens_of("admin"))

    async def read(self, url: str, params: Mapping[str, str] | None = None) -> httpx.Response:
        return await self.reader.get(url, params)

    async def admin_post(
        self,
        url: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return await self.admin.post(url, body, params, headers)

    async def balance(self, customer_id: str) -> httpx.Response:
        return await self.reader.balance(customer_id)

    async def ledger(
        self, customer_id: str, limit: int = 200, cursor: str | None = None
    ) -> httpx.Response:
        return await self.reader.ledger(customer_id, limit, cursor)

    async def tier(self, customer_id: str) -> httpx.Response:
        return await self.reader.tier(customer_id)

    async def notifications(self, customer_id: str) -> httpx.Response:
        return await self.reader.notifications(customer_id)

    async def stamp_cards(self, customer_id: str) -> httpx.Response:
        return await self.reader.stamp_cards(customer_id)

    async def challenges(self, customer_id: str) -> httpx.Response:
        return await self.reader.challenges(customer_id)

    async def badges(self, customer_id: str) -> httpx.Response:
        return await self.reader.badges(customer_id)

    async def customer_insights(
        self, customer_id: str, as_of: When | None = None
    ) -> httpx.Response:
        """The member's RFM, lifecycle, loyalty types and segments (insights)."""
        return await self.reader.insights().customer_insights(customer_id, as_of)

    async def purchase_answer(
        self, customer_id: str, total: str, *, currency: str = "EUR"
    ) -> dict[str, Any]:
        """A purchase, sent and retried as `purchase` sends it, answered with ingest's whole
        body: its `event_id`, and the member's `wallet_url` (the receipt's QR link) when ingest
        is configured with the web's address and the receipts' secret."""
        body = {
            "purchase_id": f"p-{uuid.uuid4()}",
            "customer_id": customer_id,
            "occurred_at": datetime.now(UTC).isoformat(),
            "currency": currency,
            "total": total,
        }
        key = new_idempotency_key()
        return json_object(await self.call("POST", "/v1/purchases", body, idempotency_key=key))


def service_urls(env: DevEnv) -> ServiceUrls:
    return ServiceUrls(
        ingest=env.ingest_url,
        points=env.points_url,
        tiers=env.tiers_url,
        notifications=env.notifications_url,
        engagement=env.engagement_url,
        insights=env.insights_url,
    )
