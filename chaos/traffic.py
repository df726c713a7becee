"""The load: signed POS calls to ingest, the till's calls about points among them (relayed to
points by ingest), and the model of what each answer commits the system to.

Each customer's calls are made one after the other (a till serves one customer at a time), so
the order ingest accepted them in is known; customers run concurrently. A call whose answer is
lost (an instance killed mid-request, a 5xx while the database is away) is retried with the
same Idempotency-Key, as a real POS does, until it gets a definite answer: a 2xx or a 4xx. The
model records only those answers, never what the call was meant to do."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from fedelta_client.signing import SIGNATURE_HEADER, sign_request

# Per customer, qualifying spend stays below silver (500): the tier multiplier never changes
# what a purchase earns, so the points each purchase owes are known exactly.
SPEND_CEILING = 450
WELCOME_BONUS = 100
RETRYABLE = frozenset({500, 502, 503, 504})


@dataclass
class Hold:
    hold_id: str
    points: int
    settled: str  # "capture" or "void"


@dataclass
class TenderPurchase:
    """A purchase paid for in part with points: its total (EUR) and the points spent on it."""

    total: int
    points: int


@dataclass
class CustomerModel:
    """What the calls answered 2xx commit the system to, for one customer."""

    customer_id: str
    email: str
    consent_email: bool
    enrolled: bool = False
    purchases: dict[str, int] = field(default_factory=dict)  # purchase id -> total (EUR)
    refunds: dict[str, tuple[str, int]] = field(default_factory=dict)  # refund id -> (p, EUR)
    redemptions: list[int] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    refused_purchases: set[str] = field(default_factory=set)
    refused_refunds: set[str] = field(default_factory=set)
    tender: dict[str, TenderPurchase] = field(default_factory=dict)  # purchase id -> ...
    coupons: dict[str, str] = field(default_factory=dict)  # coupon id -> issued | redeemed
    purchase_events: list[str] = field(default_factory=list)  # accepted order, purchases topic
    consent_changed: bool = False
    unknown: int = 0  # calls that never got a definite answer

    def refunded(self, purchase_id: str) -> int:
        return sum(amount for p, amount in self.refunds.values() if p == purchase_id)

    @property
    def spend(self) -> int:
        return sum(self.purchases.values()) - sum(amount for _, amount in self.refunds.values())

    @property
    def lifetime_earned(self) -> int:
        return WELCOME_BONUS + sum(self.purchases.values())

    def tender_returns(self) -> list[int]:
        """What each refund of a purchase paid with points gave back, in the order they were
        accepted: after refunds of R euros in all, floor(points * R / total) are back (the
        lots are a year from expiring, so every point returns)."""
        returns: list[int] = []
        refunded: Counter[str] = Counter()
        for purchase_id, amount in self.refunds.values():
            paid = self.tender.get(purchase_id)
            if paid is None:
                continue
            before = paid.points * refunded[purchase_id] // paid.total
            refunded[purchase_id] += amount
            returns.append(paid.points * refunded[purchase_id] // paid.total - before)
        return returns

    @property
    def net_points(self) -> int:
        """available minus debt once everything is applied: at bronze a purchase of N whole euros
        earns N points and a refund of M whole euros reverses M (and gives back its share of
        the points that paid for the purchase)."""
        return (
            self.lifetime_earned
            - sum(amount for _, amount in self.refunds.values())
            - sum(self.redemptions)
            - sum(h.points for h in self.holds if h.settled == "capture")
            + sum(self.tender_returns())
        )


@dataclass(frozen=True)
class Endpoints:
    ingest: tuple[str, ...]
    points: tuple[str, ...]
    partner_key: str
    partner_secret: str
    admin_token: str  # points' own admin token (each service has tokens of its own)
    reward_id: str = ""  # the catalogue's reward the customers redeem (chaos creates it)
    reward_cost: int = 0


@dataclass
class Tally:
    answers: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, answer)
    calls: int = 0
    retries: int = 0

    def note(self, kind: str, answer: str) -> None:
        self.answers[(kind, answer)] += 1
        self.calls += 1
        if self.calls % 1000 == 0:
            print(f"chaos: {time.strftime('%H:%M:%S')} {self.calls} calls answered", flush=True)


class Driver:
    def __init__(
        self,
        endpoints: Endpoints,
        http: httpx.AsyncClient,
        tally: Tally,
        *,
        answer_deadline_s: float,
        rate: float,
    ) -> None:
        self.interval = 1.0 / rate
        self._next_slot = 0.0
        self.endpoints = endpoints
        self.http = http
        self.tally = tally
        self.answer_deadline_s = answer_deadline_s
        self._turn = 0

    async def request(
        self,
        kind: str,
        service: str,
        method: str,
        path: str,
        body: dict[str, Any] | None,
    ) -> httpx.Response | None:
        """The definite answer to one call, retried on other instances while it has none;
        None if the deadline passed without one."""
        await self._pace()
        raw = json.dumps(body).encode() if body is not None else b""
        key = str(uuid.uuid4())
        bases = self.endpoints.ingest if service == "ingest" else self.endpoints.points
        deadline = time.monotonic() + self.answer_deadline_s
        backoff = 0.1
        while True:
            self._turn += 1
            url = httpx.URL(f"{bases[self._turn % len(bases)]}{path}")
            headers = {"Content-Type": "application/json", "Idempotency-Key": key}
            if service == "ingest":
                headers["Authorization"] = f"Bearer {self.endpoints.partner_key}"
                headers[SIGNATURE_HEADER] = sign_request(
                    self.endpoints.partner_secret, int(time.time()), method, url, raw
                )
            else:
                headers["Authorization"] = f"Bearer {self.endpoints.admin_token}"
            try:
                response = await self.http.request(method, url, content=raw, headers=headers)
                if response.status_code not in RETRYABLE:
                    self.tally.note(kind, str(response.status_code))
                    return response
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.tally.note(kind, "no answer")
                return None
            self.tally.retries += 1
            # Backing off between attempts at a part that is restarting, not waiting for an
            # outcome: the answer itself is what the loop polls for.
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    async def _pace(self) -> None:
        """At most `rate` new calls a second: a load generator's pacing, not a wait for an
        outcome."""
        now = time.monotonic()
        slot = max(now, self._next_slot)
        self._next_slot = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def plan_calls(total: int, rng: random.Random) -> list[int]:
    """How many calls each customer makes: about ten, summing to `total`."""
    sizes = []
    left = total
    while left > 0:
        size = min(left, rng.randint(6, 14))
        sizes.append(size)
        left -= size
    return sizes


class CustomerScript:
    """One customer's visits: an enrolment, then purchases with items, partial refunds,
    redemptions and holds at the till, profile changes, and calls that must be refused."""

    def __init__(self, driver: Driver, model: CustomerModel, rng: random.Random) -> None:
        self.driver = driver
        self.model = model
        self.rng = rng

    async def run(self, calls: int, stop: asyncio.Event) -> None:
        await self.enrol()
        left = calls - 1
        while left > 0 and not stop.is_set():
            left -= await self.step()

    def _now(self) -> str:
        return datetime.now(UTC).isoformat()

    def _answer(self, response: httpx.Response | None) -> int | None:
        if response is None:
            self.model.unknown += 1
            return None
        return response.status_code

    async def enrol(self) -> None:
        m = self.model
        body = {
            "customer_id": m.customer_id,
            "email": m.email,
            "locale": self.rng.choice(["en", "it", "fi", "pl"]),
            "time_zone": "Europe/Rome",
            "consent": {"email": m.consent_email, "sms": False},
        }
        response = await self.driver.request("enrol", "ingest", "POST", "/v1/customers", body)
        m.enrolled = self._answer(response) == 202

    async def step(self) -> int:
        """One operation; returns the calls it made."""
        m = self.model
        if not m.enrolled:
            await self.enrol()
            return 1
        roll = self.rng.random()
        refundable = [p for p, total in m.purchases.items() if total - m.refunded(p) >= 2]
        if roll < 0.34:
            await self.purchase()
        elif roll < 0.40:
            return await self.pay_with_points()
        elif roll < 0.52 and refundable:
            await self.refund(self.rng.choice(refundable))
        elif roll < 0.58:
            await self.change_profile()
        elif roll < 0.66:
            await self.redeem(self.rng.randint(5, 40))
        elif roll < 0.72:
            return await self.redeem_reward()
        elif roll < 0.82:
            return await self.hold()
        else:
            await self.refused()
        return 1

    async def purchase(
        self, currency: str = "EUR", redemption_id: str | None = None
    ) -> tuple[str, int] | None:
        """A purchase with items; its id and total (EUR) when accepted."""
        m = self.model
        room = SPEND_CEILING - sum(m.purchases.values())
        lines = [
            (self.rng.randint(1, 3), self.rng.randint(1, 15)) for _ in range(self.rng.randint(1, 3))
        ]
        items = [
            {
                "sku": f"sku-{self.rng.randint(1, 50)}",
                "category": self.rng.choice(["coffee", "food", "merch"]),
                "quantity": quantity,
                "unit_price": f"{unit_price}.00",
            }
            for quantity, unit_price in lines
        ]
        total = sum(quantity * unit_price for quantity, unit_price in lines)
        if currency == "EUR" and total > room:
            await self.refused()
            return None
        purchase_id = f"p-{uuid.uuid4().hex[:16]}"
        body = {
            "purchase_id": purchase_id,
            "customer_id": m.customer_id,
            "store_id": f"store-{self.rng.randint(1, 5)}",
            "occurred_at": self._now(),
            "currency": currency,
            "total": f"{total}.00",
            "items": items,
        }
        if redemption_id is not None:
            body["redemption_id"] = redemption_id
        kind = "purchase" if redemption_id is None else "purchase (paid with points)"
        response = await self.driver.request(kind, "ingest", "POST", "/v1/purchases", body)
        status = self._answer(response)
        if status == 202 and response is not None:
            m.purchases[purchase_id] = total
            m.purchase_events.append(response.json()["event_id"])
            return purchase_id, total
        if status is not None:
            m.refused_purchases.add(purchase_id)
        return None

    async def pay_with_points(self) -> int:
        """Points redeemed at the till, then the purchase they paid part of, naming the
        redemption; its refunds give the points back in proportion. Returns the calls made."""
        m = self.model
        points = self.rng.randint(5, 20)
        body = {"points": points, "reward": "part of the bill"}
        path = f"/v1/customers/{m.customer_id}/redemptions"
        response = await self.driver.request("redeem (tender)", "ingest", "POST", path, body)
        if self._answer(response) != 201 or response is None:
            return 1
        m.redemptions.append(points)
        bought = await self.purchase(redemption_id=response.json()["redemption_id"])
        if bought is not None:
            purchase_id, total = bought
            m.tender[purchase_id] = TenderPurchase(total, points)
        return 2

    async def redeem_reward(self) -> int:
        """The catalogue's reward redeemed at the till (a coupon), then mostly used, and now and
        then shown a second time (refused). Returns the calls made."""
        m = self.model
        path = f"/v1/customers/{m.customer_id}/redemptions"
        body = {"reward_id": self.driver.endpoints.reward_id}
        response = await self.driver.request("redeem reward", "ingest", "POST", path, body)
        if self._answer(response) != 201 or response is None:
            return 1
        m.redemptions.append(self.driver.endpoints.reward_cost)
        coupon = response.json()["coupon"]
        m.coupons[coupon["coupon_id"]] = "issued"
        if self.rng.random() < 0.3:
            return 1
        calls = 1
        for kind in ("use coupon", "use coupon (again)")[: 1 + (self.rng.random() < 0.3)]:
            used = await self.driver.request(
                kind, "ingest", "POST", f"/v1/coupons/{coupon['code']}/redeem", {}
            )
            calls += 1
            if self._answer(used) == 200:
                m.coupons[coupon["coupon_id"]] = "redeemed"
        return calls

    async def refund(self, purchase_id: str, *, beyond: bool = False) -> None:
        m = self.model
        remaining = m.purchases.get(purchase_id, 0) - m.refunded(purchase_id)
        amount = (
            remaining + self.rng.randint(1, 20) if beyond else self.rng.randint(1, remaining - 1)
        )
        refund_id = f"r-{uuid.uuid4().hex[:16]}"
        body = {"refund_id": refund_id, "amount": f"{amount}.00", "occurred_at": self._now()}
        kind = "refund (too much)" if beyond else "refund"
        path = f"/v1/purchases/{purchase_id}/refunds"
        response = await self.driver.request(kind, "ingest", "POST", path, body)
        status = self._answer(response)
        if status == 202 and response is not None:
            m.refunds[refund_id] = (purchase_id, amount)
            m.purchase_events.append(response.json()["event_id"])
        elif status is not None:
            m.refused_refunds.add(refund_id)

    async def change_profile(self) -> None:
        m = self.model
        email = f"{m.customer_id}.{self.rng.randint(1, 10**6)}@example.com"
        body: dict[str, Any] = {"email": email, "locale": self.rng.choice(["en", "it", "fi"])}
        path = f"/v1/customers/{m.customer_id}"
        response = await self.driver.request("profile", "ingest", "PATCH", path, body)
        if self._answer(response) == 202:
            m.email = email

    async def redeem(self, points: int, kind: str = "redeem") -> None:
        m = self.model
        body = {"points": points, "reward": "coffee"}
        path = f"/v1/customers/{m.customer_id}/redemptions"
        response = await self.driver.request(kind, "ingest", "POST", path, body)
        if self._answer(response) == 201:
            m.redemptions.append(points)

    async def hold(self) -> int:
        """A hold placed, then captured or voided; returns the calls made."""
        m = self.model
        points = self.rng.randint(5, 30)
        body = {"points": points, "reward": "cake"}
        path = f"/v1/customers/{m.customer_id}/holds"
        response = await self.driver.request("hold", "ingest", "POST", path, body)
        if self._answer(response) != 201 or response is None:
            return 1
        hold = Hold(response.json()["hold_id"], points, self.rng.choice(["capture", "void"]))
        settle = await self.driver.request(
            f"hold {hold.settled}", "ingest", "POST", f"/v1/holds/{hold.hold_id}/{hold.settled}", {}
        )
        status = self._answer(settle)
        if status == 200:
            m.holds.append(hold)
        else:
            # A placed hold that was not settled would lapse only after the hold timeout;
            # the run cannot wait for that, so the model cannot say what it holds.
            m.unknown += 1
        return 2

    async def refused(self) -> None:
        """A call ingest or points must refuse, with no effect anywhere."""
        m = self.model
        choice = self.rng.randrange(4)
        if choice == 0:
            await self.purchase(currency="USD")
        elif choice == 1 and m.purchases:
            await self.refund(self.rng.choice(list(m.purchases)), beyond=True)
        elif choice == 2:
            unknown = f"p-{uuid.uuid4().hex[:16]}"
            refund_id = f"r-{uuid.uuid4().hex[:16]}"
            body = {"refund_id": refund_id, "amount": "5.00", "occurred_at": self._now()}
            path = f"/v1/purchases/{unknown}/refunds"
            response = await self.driver.request("refund (unknown)", "ingest", "POST", path, body)
            if self._answer(response) is not None and response is not None:
                if response.status_code == 202:
                    m.unknown += 1  # accepted a refund of nothing: the checks cannot model it
                else:
                    m.refused_refunds.add(refund_id)
        else:
            await self.redeem(1_000_000, kind="redeem (too many)")
