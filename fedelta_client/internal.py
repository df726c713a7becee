"""The services' internal HTTP APIs (points, tiers, notifications, engagement, insights, and
ingest's `/v1/admin/*`), with each service's own bearer token of one role: `read` reads, `operate`
also runs jobs and decides held earnings, `admin` does everything. A token of one service is
worthless at another, so the client sends each service its own (`tokens`), chosen by the
service a call goes to (by its URL, for the calls made by URL).

Reads answer the HTTP response as it is: a 404 is normal while a service has not yet
processed a new customer's events. Admin calls answer the JSON body and raise `Refused` or
`Unavailable` (`fedelta_client.answers`) for anything but a success."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import quote

import httpx

from fedelta_client.answers import json_object
from fedelta_client.devenv import DevEnv, Role
from fedelta_client.pos import IDEMPOTENCY_HEADER, new_idempotency_key

SERVICES = ("ingest", "points", "tiers", "notifications", "engagement", "insights")


@dataclass(frozen=True)
class ServiceUrls:
    ingest: str
    points: str
    tiers: str
    notifications: str
    # Optional, so that code written before these services existed keeps working; calls to
    # one of them then fail by name.
    engagement: str | None = None
    insights: str | None = None

    def of(self, service: str) -> str:
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}: one of {', '.join(SERVICES)}")
        url: str | None = getattr(self, service)
        if url is None:
            raise ValueError(f"no URL given for the service {service!r} (ServiceUrls.{service})")
        return url.rstrip("/")

    def known(self) -> tuple[str, ...]:
        """The services this client has a URL for."""
        return tuple(service for service in SERVICES if getattr(self, service) is not None)


class InternalClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        urls: ServiceUrls,
        token: str | None = None,
        tokens: Mapping[str, str] | None = None,
    ) -> None:
        """`tokens`: each service's token, by service; `token`: one token for every service
        (a client of a single service, or a test)."""
        if tokens is None:
            if token is None:
                raise ValueError("InternalClient needs a token or tokens by service")
            tokens = dict.fromkeys(SERVICES, token)
        self.http = http
        self.urls = urls
        self.tokens = dict(tokens)

    @staticmethod
    def from_dev_env(
        http: httpx.AsyncClient,
        env: DevEnv | None = None,
        *,
        admin: bool = False,
        role: Role | None = None,
    ) -> InternalClient:
        """A local stack's services with each one's token of `role` (read unless given;
        admin if `admin`)."""
        env = env or DevEnv.load()
        urls = ServiceUrls(
            env.ingest_url,
            env.points_url,
            env.tiers_url,
            env.notifications_url,
            env.engagement_url,
            env.insights_url,
        )
        chosen: Role = role or ("admin" if admin else "read")
        return InternalClient(http, urls=urls, tokens=env.tokens_of(chosen))

    def authorization(self, service: str) -> dict[str, str]:
        """The header carrying that service's token."""
        if service not in self.tokens:
            raise ValueError(f"no token for the service {service!r}")
        return {"Authorization": f"Bearer {self.tokens[service]}"}

    def service_of(self, url: str) -> str:
        """The service a URL belongs to: the one whose base URL it starts with."""
        for service in self.urls.known():
            base = self.urls.of(service)
            if url == base or url.startswith(f"{base}/") or url.startswith(f"{base}?"):
                return service
        raise ValueError(f"{url!r} is at none of the services' URLs")

    # --- by URL -------------------------------------------------------------------------

    async def get(self, url: str, params: Mapping[str, str] | None = None) -> httpx.Response:
        headers = self.authorization(self.service_of(url))
        return await self.http.get(url, params=params, headers=headers)

    async def post(
        self,
        url: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        authorization = self.authorization(self.service_of(url))
        return await self.http.post(
            url, json=body, params=params, headers={**authorization, **(headers or {})}
        )

    async def request(
        self,
        method: str,
        service: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return await self.http.request(
            method,
            f"{self.urls.of(service)}{path}",
            json=body,
            params=params,
            headers=self.authorization(service),
        )

    # --- reads (any role) -------------------------------------------------------------

    async def balance(self, customer_id: str) -> httpx.Response:
        return await self.get(f"{self.urls.points}/v1/customers/{customer_id}/balance")

    async def ledger(
        self, customer_id: str, limit: int = 200, cursor: str | None = None
    ) -> httpx.Response:
        """Newest first; follow `next_cursor` for the next page."""
        params = {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
        return await self.get(
            f"{self.urls.points}/v1/customers/{customer_id}/ledger", params=params
        )

    async def tier(self, customer_id: str) -> httpx.Response:
        return await self.get(f"{self.urls.tiers}/v1/customers/{customer_id}/tier")

    async def tier_history(self, customer_id: str) -> httpx.Response:
        return await self.get(f"{self.urls.tiers}/v1/customers/{customer_id}/tier/history")

    async def notifications(self, customer_id: str) -> httpx.Response:
        return await self.get(f"{self.urls.notifications}/v1/customers/{customer_id}/notifications")

    async def stamp_cards(self, customer_id: str) -> httpx.Response:
        """The member's stamp cards (engagement): stamps on the current card of each."""
        return await self._engagement(customer_id, "stamp-cards")

    async def challenges(self, customer_id: str) -> httpx.Response:
        """The member's challenges (engagement), with their progress."""
        return await self._engagement(customer_id, "challenges")

    async def badges(self, customer_id: str) -> httpx.Response:
        """The badges the member earned (engagement)."""
        return await self._engagement(customer_id, "badges")

    async def _engagement(self, customer_id: str, what: str) -> httpx.Response:
        return await self.get(f"{self.urls.of('engagement')}/v1/customers/{customer_id}/{what}")

    def insights(self) -> InsightsClient:
        """Insights' API with this client's insights token (its role: read, or admin for
        `create_segment`)."""
        url = self.urls.of("insights")
        self.authorization("insights")  # a client without an insights token says so
        return InsightsClient(self.http, url=url, token=self.tokens["insights"])

    # --- admin (admin token) ------------------------------------------------------------

    async def run_job(self, service: str, name: str, as_of: str | None = None) -> dict[str, Any]:
        """A time-driven job (`all`: every job of the service), now or as of an RFC 3339
        instant; its summary. A 409 (Refused) means another instance is running it."""
        params = {"as_of": as_of} if as_of else {}
        return json_object(
            await self.request("POST", service, f"/v1/admin/jobs/{name}", params=params)
        )

    async def partners(self) -> list[dict[str, Any]]:
        """Every partner (never its credentials)."""
        items: list[dict[str, Any]] = json_object(
            await self.request("GET", "ingest", "/v1/admin/partners")
        )["items"]
        return items

    async def create_partner(self, name: str, partner_id: str | None = None) -> dict[str, Any]:
        """`partner_id`, `name`, `api_key`, `signing_secret`: the credentials, shown once."""
        body = {"name": name} | ({"partner_id": partner_id} if partner_id else {})
        return json_object(await self.request("POST", "ingest", "/v1/admin/partners", body))

    async def rotate_partner_key(self, partner_id: str) -> dict[str, Any]:
        """New credentials (shown once); the old ones stop working."""
        path = f"/v1/admin/partners/{partner_id}/rotate-key"
        return json_object(await self.request("POST", "ingest", path))

    async def revoke_partner(self, partner_id: str) -> dict[str, Any]:
        path = f"/v1/admin/partners/{partner_id}/revoke"
        return json_object(await self.request("POST", "ingest", path))

    # --- the reward catalogue and coupons (points) --------------------------------------

    async def rewards(self, include_ended: bool = False) -> list[dict[str, Any]]:
        """The catalogue: the rewards a member may be offered now (every one, ended and
        retired too, with `include_ended`)."""
        params = {"include_ended": "true"} if include_ended else {}
        answer = json_object(await self.request("GET", "points", "/v1/rewards", params=params))
        items: list[dict[str, Any]] = answer["items"]
        return items

    async def create_reward(self, reward: Mapping[str, Any]) -> dict[str, Any]:
        """A new reward (admin): `name`, `points_cost`, `kind` and the optional fields of
        product §7; the reward with its `id`."""
        return json_object(await self.request("POST", "points", "/v1/rewards", reward))

    async def coupon(self, coupon_id: str) -> dict[str, Any]:
        """One coupon by its id, with its code."""
        return json_object(await self.request("GET", "points", f"/v1/coupons/{coupon_id}"))

    async def customer_rewards(self, customer_id: str) -> dict[str, Any]:
        """What the member may redeem now, and why not the others."""
        path = f"/v1/customers/{customer_id}/rewards"
        return json_object(await self.request("GET", "points", path))

    # --- member imports (ingest) --------------------------------------------------------

    async def import_members(
        self, partner_id: str, rows: Sequence[Mapping[str, Any]], *, welcome: bool = False
    ) -> list[dict[str, Any]]:
        """Members brought over from another program for a partner (admin; docs/import.md):
        at most 500 rows, each with its `line` and the columns of an import. One result per
        row, in order: `line`, `customer_id`, `outcome` (`imported`, `exists` or `refused`)
        and a refused row's `reason`. Sending the same rows again imports nothing (each is
        `exists`), so a call that got no answer may be sent again as it is."""
        body = {"partner_id": partner_id, "welcome": welcome, "rows": list(rows)}
        answer = json_object(
            await self.request("POST", "ingest", "/v1/admin/imports/members", body)
        )
        results: list[dict[str, Any]] = answer["results"]
        return results


# --- insights (issue 21) --------------------------------------------------------------------

# A date or an instant, sent as ISO 8601 (an RFC 3339 string is sent as it is).
When = str | date | datetime


def _iso(when: When) -> str:
    """An instant as the APIs take it: a date is its midnight UTC (never a bare date)."""
    if isinstance(when, str):
        return when
    if not isinstance(when, datetime):
        when = datetime.combine(when, time.min, tzinfo=UTC)
    return when.isoformat()


class InsightsClient:
    """Insights' API with one token of it: a member's RFM scores, lifecycle stage, loyalty
    types and segments; the segments and their members; the program's KPIs. Every read takes
    an instant to look as of (default: now). `customer_insights` answers the response as it
    is (a 404 is normal until insights has processed a new member's events); the others
    answer the JSON body and raise `Refused` or `Unavailable` for anything but a success."""

    def __init__(self, http: httpx.AsyncClient, *, url: str, token: str) -> None:
        self.http = http
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    @staticmethod
    def from_dev_env(
        http: httpx.AsyncClient, env: DevEnv | None = None, *, role: Role = "read"
    ) -> InsightsClient:
        """A local stack's insights with its token of `role`."""
        env = env or DevEnv.load()
        return InsightsClient(http, url=env.insights_url, token=env.token("insights", role))

    async def _get(self, path: str, params: Mapping[str, str]) -> httpx.Response:
        return await self.http.get(f"{self.url}{path}", params=params, headers=self.headers)

    async def customer_insights(
        self, customer_id: str, as_of: When | None = None
    ) -> httpx.Response:
        """`customer_id`, `as_of`, `rfm` (`recency_days`, `frequency`, `monetary` and their
        quintile scores `r`, `f`, `m`), `lifecycle`, `loyalty_types` (each `type` with its
        `reasons`) and `segments`."""
        path = f"/v1/customers/{quote(customer_id, safe='')}/insights"
        return await self._get(path, _as_of(as_of))

    async def segments(self) -> list[dict[str, Any]]:
        """Every segment (built in and custom): its definition and member count."""
        answer = json_object(await self._get("/v1/segments", {}))
        items: list[dict[str, Any]] = answer["items"]
        return items

    async def segment(self, name: str) -> dict[str, Any]:
        """One segment by its name (`loyalty:happy`, `lifecycle:lapsed`, a custom one's)."""
        return json_object(await self._get(f"/v1/segments/{_segment_path(name)}", {}))

    async def segment_members(
        self, name: str, cursor: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        """A page of the segment's members: `items` (each `customer_id` and `since`) and
        `next_cursor` (None on the last page; pass it back for the next)."""
        params = ({"cursor": cursor} if cursor else {}) | (
            {"limit": str(limit)} if limit is not None else {}
        )
        path = f"/v1/segments/{_segment_path(name)}/members"
        return json_object(await self._get(path, params))

    async def kpis(self, from_: When | None = None, to: When | None = None) -> dict[str, Any]:
        """The program's KPIs over [from_, to) (insights' default period where not given):
        active members, repeat-purchase rate, average basket, points issued / redeemed /
        expired, breakage, redemption rate, liability trend, tier distribution, NPS, win-back
        rate."""
        period = {"from": from_, "to": to}
        params = {name: _iso(when) for name, when in period.items() if when is not None}
        return json_object(await self._get("/v1/kpis", params))

    async def create_segment(
        self, segment: Mapping[str, Any], idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """A custom segment (admin token): the segment as insights stored it. Sent with an
        Idempotency-Key (a new one unless given): the same key sent again creates nothing."""
        headers = self.headers | {IDEMPOTENCY_HEADER: idempotency_key or new_idempotency_key()}
        response = await self.http.post(
            f"{self.url}/v1/segments", json=dict(segment), headers=headers
        )
        return json_object(response)


def _as_of(as_of: When | None) -> dict[str, str]:
    return {} if as_of is None else {"as_of": _iso(as_of)}


def _segment_path(name: str) -> str:
    # A built-in segment's colon stays readable; anything else a name could not hold is escaped.
    return quote(name, safe=":")
