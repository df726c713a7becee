"""A partner's point of sale: enrol customers, change and erase their profiles, report
purchases and refunds to ingest, and the till's calls about points (balance, rewards,
redemptions, holds, coupons), each call signed with the partner's secret, a state change sent
with an Idempotency-Key, and retried safely (`fedelta_client.retry`)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from fedelta_client.answers import REPLAYED_HEADER, Accepted, Refused, Unavailable
from fedelta_client.devenv import DevEnv
from fedelta_client.retry import RetryPolicy
from fedelta_client.signing import SIGNATURE_HEADER, sign_request

IDEMPOTENCY_HEADER = "Idempotency-Key"
Body = Mapping[str, Any] | bytes


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class TillAnswer:
    """Points' answer to a till call, relayed by ingest: its JSON `body`; for a state change
    the `idempotency_key` it was sent with (keep it to retry the same call later) and whether
    this is the first answer again (`replayed`)."""

    status_code: int
    body: dict[str, Any]
    idempotency_key: str | None = None
    replayed: bool = False

    @classmethod
    def of(cls, response: httpx.Response, idempotency_key: str | None) -> TillAnswer:
        return cls(
            status_code=response.status_code,
            body=response.json(),
            idempotency_key=idempotency_key,
            replayed=response.headers.get(REPLAYED_HEADER) == "true",
        )


class PosClient:
    """The POS API of ingest (`POST /v1/customers`, `PATCH` and `DELETE /v1/customers/{id}`,
    `POST /v1/purchases`, `POST /v1/purchases/{id}/refunds`, and the till calls: `till_balance`,
    `customer_rewards`, `redeem`, `hold`, `capture`, `void`, `redeem_coupon`) for one partner.

    The typed calls (`enrol`, `update_customer`, `erase_customer`, `purchase`, `refund`) send
    an Idempotency-Key (a new one unless given), retry per `retry`, and answer `Accepted` or
    raise `Refused` (4xx) or `Unavailable` (no definite answer). `send` is one signed attempt
    and answers the HTTP response as it is."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        ingest_url: str,
        partner_key: str,
        partner_secret: str,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.http = http
        self.ingest_url = ingest_url.rstrip("/")
        self.partner_key = partner_key
        self.partner_secret = partner_secret
        self.retry = retry or RetryPolicy()

    @staticmethod
    def from_dev_env(
        http: httpx.AsyncClient, env: DevEnv | None = None, *, retry: RetryPolicy | None = None
    ) -> PosClient:
        """The partner of a local stack's `.fedelta/dev.env` (`DevEnv.load()` unless given)."""
        env = env or DevEnv.load()
        return PosClient(
            http,
            ingest_url=env.ingest_url,
            partner_key=env.partner_key,
            partner_secret=env.partner_secret,
            retry=retry,
        )

    # --- raw signed calls ---------------------------------------------------------------

    async def send(
        self,
        method: str,
        path: str,
        body: Body = b"",
        *,
        idempotency_key: str | None = None,
        signed_at: int | None = None,
        secret: str | None = None,
    ) -> httpx.Response:
        """One signed attempt; `signed_at` and `secret` override the clock and the secret (to
        see a stale or forged signature refused)."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        timestamp = signed_at if signed_at is not None else int(time.time())
        url = httpx.URL(f"{self.ingest_url}{path}")
        headers = {
            "Authorization": f"Bearer {self.partner_key}",
            SIGNATURE_HEADER: sign_request(
                secret if secret is not None else self.partner_secret, timestamp, method, url, raw
            ),
        }
        if raw or method.upper() != "DELETE":
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        return await self.http.request(method, url, content=raw, headers=headers)

    async def post(self, path: str, body: Body, *, signed_at: int | None = None) -> httpx.Response:
        return await self.send("POST", path, body, signed_at=signed_at)

    async def patch(self, path: str, body: Body, *, signed_at: int | None = None) -> httpx.Response:
        return await self.send("PATCH", path, body, signed_at=signed_at)

    async def call(
        self, method: str, path: str, body: Body = b"", *, idempotency_key: str | None
    ) -> httpx.Response:
        """The call sent until it has a definite answer, every attempt with the same key and
        body (signed afresh); Unavailable when the attempts ran out without one."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        failure = "no attempt"
        for attempt in range(1, self.retry.attempts + 1):
            try:
                response = await self.send(method, path, raw, idempotency_key=idempotency_key)
            except httpx.TransportError as error:
                failure, delay = type(error).__name__, self.retry.backoff(attempt)
            else:
                retry_in = self.retry.delay_after(response, attempt)
                if retry_in is None:
                    return response
                failure, delay = f"HTTP {response.status_code}", retry_in
            if attempt < self.retry.attempts:
                await self.retry.sleep(delay)
        raise Unavailable(
            f"{method} {path}: no definite answer after {self.retry.attempts} attempt(s) "
            f"({failure}); retry later with Idempotency-Key {idempotency_key}",
            idempotency_key=idempotency_key,
        )

    async def accepted(
        self, method: str, path: str, body: Body = b"", *, idempotency_key: str | None = None
    ) -> Accepted:
        key = idempotency_key or new_idempotency_key()
        response = await self.call(method, path, body, idempotency_key=key)
        if response.status_code in (200, 201, 202):
            return Accepted.of(response, key)
        if 400 <= response.status_code < 500:
            raise Refused.of(response)
        raise Unavailable(
            f"{method} {path}: HTTP {response.status_code}; retry later with Idempotency-Key {key}",
            idempotency_key=key,
        )

    async def till(
        self, method: str, path: str, body: Body = b"", *, idempotency_key: str | None = None
    ) -> TillAnswer:
        """A till call (relayed to points by ingest): a POST with an Idempotency-Key (a new
        one unless given), retried per `retry`; TillAnswer, or Refused (4xx: 404 unknown,
        409 used, 410 expired, 403 another partner's reward, 422 refused...) or Unavailable
        (no definite answer: retry later with `idempotency_key`)."""
        key = idempotency_key or (None if method == "GET" else new_idempotency_key())
        response = await self.call(method, path, body, idempotency_key=key)
        if response.status_code in (200, 201):
            return TillAnswer.of(response, key)
        if 400 <= response.status_code < 500:
            raise Refused.of(response)
        retry = f"retry later with Idempotency-Key {key}" if key else "retry later"
        raise Unavailable(
            f"{method} {path}: HTTP {response.status_code}; {retry}", idempotency_key=key
        )

    # --- the POS calls ------------------------------------------------------------------

    async def enrol(
        self,
        customer_id: str,
        email: str | None = None,
        consent: bool = True,
        time_zone: str = "Europe/Rome",
        *,
        locale: str = "en",
        phone: str | None = None,
        sms_consent: bool = False,
        referred_by: str | None = None,
        idempotency_key: str | None = None,
    ) -> Accepted:
        """`consent` is the email consent."""
        body: dict[str, Any] = {
            "customer_id": customer_id,
            "email": email,
            "locale": locale,
            "time_zone": time_zone,
            "consent": {"email": consent, "sms": sms_consent},
        }
        if phone is not None:
            body["phone"] = phone
        if referred_by is not None:
            body["referred_by"] = referred_by
        return await self.accepted("POST", "/v1/customers", body, idempotency_key=idempotency_key)

    async def update_customer(
        self, customer_id: str, changes: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Accepted:
        """A JSON merge patch of the profile: `email`, `phone`, `locale`, `time_zone`,
        `consent` ({"email": bool, "sms": bool}); `None` removes an email or a phone."""
        return await self.accepted(
            "PATCH", f"/v1/customers/{customer_id}", changes, idempotency_key=idempotency_key
        )

    async def erase_customer(
        self, customer_id: str, *, idempotency_key: str | None = None
    ) -> Accepted:
        """The right to be forgotten: the contact data leave every service."""
        return await self.accepted(
            "DELETE", f"/v1/customers/{customer_id}", idempotency_key=idempotency_key
        )

    async def purchase(
        self,
        customer_id: str,
        total: str | Decimal,
        purchase_id: str | None = None,
        occurred_at: datetime | None = None,
        *,
        currency: str = "EUR",
        store_id: str | None = None,
        items: Sequence[Mapping[str, Any]] | None = None,
        redemption_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Accepted:
        """`total` and the items' `unit_price` are decimal strings (or Decimals); the purchase
        id is also a natural key: the same id and body again get the first answer.
        `redemption_id`: the till redemption that paid for part of it (points as tender)."""
        body: dict[str, Any] = {
            "purchase_id": purchase_id or f"p-{uuid.uuid4()}",
            "customer_id": customer_id,
            "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(),
            "currency": currency,
            "total": str(total),
        }
        if store_id is not None:
            body["store_id"] = store_id
        if items is not None:
            body["items"] = [dict(item) for item in items]
        if redemption_id is not None:
            body["redemption_id"] = redemption_id
        return await self.accepted("POST", "/v1/purchases", body, idempotency_key=idempotency_key)

    async def refund(
        self,
        purchase_id: str,
        amount: str | Decimal,
        refund_id: str | None = None,
        occurred_at: datetime | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Accepted:
        body = {
            "refund_id": refund_id or f"r-{uuid.uuid4()}",
            "amount": str(amount),
            "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(),
        }
        return await self.accepted(
            "POST", f"/v1/purchases/{purchase_id}/refunds", body, idempotency_key=idempotency_key
        )

    # --- the till's calls about points (relayed to points by ingest) --------------------

    async def till_balance(self, customer_id: str) -> dict[str, Any]:
        """What the till shows: `available`, `pending`, `debt`, the next expiries (through
        ingest, signed; `StackClient.balance` reads points with the read token)."""
        return (await self.till("GET", f"/v1/customers/{customer_id}/balance")).body

    async def customer_rewards(self, customer_id: str) -> dict[str, Any]:
        """The rewards the member may redeem now (`affordable`, and `why_not` for the rest)."""
        return (await self.till("GET", f"/v1/customers/{customer_id}/rewards")).body

    async def redeem(
        self,
        customer_id: str,
        points: int | None = None,
        reward: str | None = None,
        *,
        reward_id: str | None = None,
        store_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> TillAnswer:
        """A free-form redemption (`points` on `reward`) or a reward of the catalogue
        (`reward_id`, whose coupon comes in the answer). Its `redemption_id` may then be
        named by the purchase it paid for (`purchase(..., redemption_id=...)`)."""
        body: dict[str, Any] = (
            {"reward_id": reward_id}
            if reward_id is not None
            else {"points": points, "reward": reward}
        )
        if store_id is not None:
            body["store_id"] = store_id
        return await self.till(
            "POST",
            f"/v1/customers/{customer_id}/redemptions",
            body,
            idempotency_key=idempotency_key,
        )

    async def hold(
        self,
        customer_id: str,
        points: int,
        reward: str,
        *,
        store_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> TillAnswer:
        """Points reserved before the payment completes: then `capture` or `void` it."""
        body: dict[str, Any] = {"points": points, "reward": reward}
        if store_id is not None:
            body["store_id"] = store_id
        return await self.till(
            "POST", f"/v1/customers/{customer_id}/holds", body, idempotency_key=idempotency_key
        )

    async def capture(self, hold_id: str, *, idempotency_key: str | None = None) -> TillAnswer:
        return await self.till(
            "POST", f"/v1/holds/{hold_id}/capture", idempotency_key=idempotency_key
        )

    async def void(self, hold_id: str, *, idempotency_key: str | None = None) -> TillAnswer:
        return await self.till("POST", f"/v1/holds/{hold_id}/void", idempotency_key=idempotency_key)

    async def redeem_coupon(
        self,
        code: str,
        *,
        store_id: str | None = None,
        purchase_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> TillAnswer:
        """Uses a coupon once; a second use is Refused with status 409 (410 expired, 404
        unknown, 403 another partner's reward)."""
        body: dict[str, Any] = {}
        if store_id is not None:
            body["store_id"] = store_id
        if purchase_id is not None:
            body["purchase_id"] = purchase_id
        return await self.till(
            "POST", f"/v1/coupons/{code}/redeem", body, idempotency_key=idempotency_key
        )
