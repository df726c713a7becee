"""The simulated traffic of partner tills: a deterministic plan of POS calls (by seed), and
the model of what the accepted ones must have done. No I/O here: `fedelta simulate` sends the
plan, and a chaos test may send the same plan its own way.

The plan: every customer is enrolled first (locale, time zone, contact details and consent
vary); then purchases with items in categories, some partially refunded (sometimes twice),
some redemptions of points, and a few calls that ingest or points must refuse. Each call may
depend on an earlier one (a purchase on its customer's enrolment, a refund on its purchase):
it is sent only after that one was accepted.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any, Literal

Expect = Literal["accept", "refuse", "either"]
Outcome = Literal["accepted", "refused", "skipped", "error"]

LOCALES = ("en", "it", "fi", "pl")
TIME_ZONES = (
    "Europe/Rome",
    "Europe/Helsinki",
    "Europe/Warsaw",
    "Europe/London",
    "America/New_York",
    "Asia/Tokyo",
    "UTC",
)
STORES = ("store-centre", "store-station", "store-airport", "web-shop")
# (sku, category, unit price)
CATALOGUE: tuple[tuple[str, str, str], ...] = (
    ("espresso", "coffee", "1.50"),
    ("cappuccino", "coffee", "2.80"),
    ("beans-1kg", "coffee", "18.90"),
    ("croissant", "bakery", "1.90"),
    ("sourdough", "bakery", "5.40"),
    ("novel", "books", "16.00"),
    ("cookbook", "books", "32.50"),
    ("headphones", "electronics", "89.00"),
    ("charger", "electronics", "24.99"),
    ("olive-oil", "grocery", "12.75"),
    ("parmigiano", "grocery", "21.30"),
    ("scarf", "clothing", "45.00"),
    ("jacket", "clothing", "159.00"),
)
CENT = Decimal("0.01")

# Kinds of calls that must be refused, each with why.
BAD_KINDS = (
    "bad-currency",  # a purchase in a currency the program does not take: 422
    "bad-signature",  # signed with the wrong secret: 401
    "unknown-customer",  # a purchase for a customer never enrolled: 422
    "over-refund",  # a refund of more than what remains refundable: 422
    "over-redemption",  # more points than any customer of the simulation can have: 409
)


@dataclass(frozen=True)
class Call:
    seq: int
    kind: str
    customer_id: str
    service: Literal["ingest", "points"]
    method: str
    path: str
    body: Mapping[str, Any]
    expect: Expect
    after: int | None = None  # the seq of the call that must have been accepted first
    purchase_id: str | None = None
    amount: Decimal = Decimal(0)  # a purchase's total or a refund's amount
    points: int = 0  # a redemption's points
    wrong_secret: bool = False


@dataclass(frozen=True)
class Plan:
    run_tag: str
    calls: tuple[Call, ...]

    @property
    def customer_ids(self) -> list[str]:
        return [c.customer_id for c in self.calls if c.kind == "enrol"]


Spec = dict[str, Any]  # a call before it is numbered: Call's fields, and what it waits for
Keyed = list[tuple[float, Spec]]  # (where the call goes in the plan, the call)


def plan_traffic(*, customers: int, purchases: int, seed: int, run_tag: str, now: datetime) -> Plan:
    """The same arguments give the same plan, call for call."""
    if customers < 1:
        raise ValueError("at least one customer")
    if purchases < 0:
        raise ValueError("purchases must not be negative")
    rng = random.Random(seed)
    keyed: Keyed = []
    customer_ids = _enrolments(rng, customers, run_tag, keyed)
    for n in range(purchases):
        _purchase_and_refunds(rng, n, customer_ids, run_tag, now, keyed)
    _redemptions(rng, customer_ids, keyed)
    purchase_calls = [spec for _, spec in keyed if spec["kind"] == "purchase"]
    for n in range(max(len(BAD_KINDS), purchases // 50)):
        keyed.append(_bad_call(rng, n, customer_ids, purchase_calls, run_tag, now))
    keyed.sort(key=lambda pair: pair[0])
    return Plan(run_tag=run_tag, calls=_numbered(spec for _, spec in keyed))


def _enrolments(rng: random.Random, customers: int, run_tag: str, keyed: Keyed) -> list[str]:
    """Every customer's enrolment (before any purchase); the customer ids."""
    customer_ids: list[str] = []
    for n in range(customers):
        customer_id = f"sim-{run_tag}-c{n:05d}"
        keyed.append(
            (
                n / customers,  # every enrolment before any purchase
                {
                    "kind": "enrol",
                    "customer_id": customer_id,
                    "service": "ingest",
                    "method": "POST",
                    "path": "/v1/customers",
                    "body": _enrolment_body(rng, customer_id),
                    "expect": "accept",
                },
            )
        )
        customer_ids.append(customer_id)
    return customer_ids


def _enrolment_body(rng: random.Random, customer_id: str) -> dict[str, Any]:
    has_email = rng.random() < 0.9
    has_phone = rng.random() < 0.3
    body: dict[str, Any] = {
        "customer_id": customer_id,
        "locale": rng.choice(LOCALES),
        "time_zone": rng.choice(TIME_ZONES),
        "consent": {
            "email": has_email and rng.random() < 0.8,
            "sms": has_phone and rng.random() < 0.5,
        },
    }
    if has_email:
        body["email"] = f"{customer_id}@example.com"
    if has_phone:
        body["phone"] = f"+3584{rng.randrange(10**7, 10**8)}"
    return body


def _purchase_and_refunds(
    rng: random.Random,
    n: int,
    customer_ids: list[str],
    run_tag: str,
    now: datetime,
    keyed: Keyed,
) -> None:
    """Purchase number `n`, with items, and now and then one or two partial refunds of it."""
    customer_id = rng.choice(customer_ids)
    purchase_id = f"sim-{run_tag}-p{n:06d}"
    items = _basket(rng)
    basket = sum((Decimal(i["unit_price"]) * i["quantity"] for i in items), Decimal(0))
    # Now and then a basket discount: the total is below the items' sum.
    total = basket * Decimal("0.9") if rng.random() < 0.1 else basket
    total = max(total.quantize(CENT, ROUND_DOWN), Decimal("1.00"))
    # In the past, and far enough for its refunds (minutes after it) to be in the past too.
    occurred_at = now - timedelta(minutes=rng.randint(15, 360))
    key = 1 + rng.random()
    keyed.append(
        (
            key,
            {
                "kind": "purchase",
                "customer_id": customer_id,
                "service": "ingest",
                "method": "POST",
                "path": "/v1/purchases",
                "expect": "accept",
                "purchase_id": purchase_id,
                "amount": total,
                "body": {
                    "purchase_id": purchase_id,
                    "customer_id": customer_id,
                    "store_id": rng.choice(STORES),
                    "occurred_at": occurred_at.isoformat(),
                    "currency": "EUR",
                    "total": str(total),
                    "items": items,
                },
                "after_customer": customer_id,
            },
        )
    )
    if rng.random() < 0.08:
        _refunds(rng, n, customer_id, purchase_id, total, occurred_at, key, run_tag, keyed)


def _basket(rng: random.Random) -> list[dict[str, Any]]:
    return [
        {"sku": sku, "category": category, "quantity": rng.randint(1, 3), "unit_price": price}
        for sku, category, price in rng.sample(CATALOGUE, rng.randint(1, 4))
    ]


def _refunds(
    rng: random.Random,
    n: int,
    customer_id: str,
    purchase_id: str,
    total: Decimal,
    occurred_at: datetime,
    key: float,
    run_tag: str,
    keyed: Keyed,
) -> None:
    """One or two partial refunds of a purchase, each after it and after the one before."""
    remaining = total
    for r in range(rng.choice((1, 1, 2))):
        amount = (total * Decimal(rng.choice(("0.1", "0.25", "0.4")))).quantize(CENT, ROUND_DOWN)
        amount = min(max(amount, CENT), remaining)
        if amount <= 0:
            break
        remaining -= amount
        key = key + rng.random() * 0.5
        keyed.append(
            (
                key,
                {
                    "kind": "refund",
                    "customer_id": customer_id,
                    "service": "ingest",
                    "method": "POST",
                    "path": f"/v1/purchases/{purchase_id}/refunds",
                    "expect": "accept",
                    "purchase_id": purchase_id,
                    "amount": amount,
                    "body": {
                        "refund_id": f"sim-{run_tag}-r{n:06d}-{r}",
                        "amount": str(amount),
                        "occurred_at": (
                            occurred_at + timedelta(minutes=rng.randint(1, 9) + r)
                        ).isoformat(),
                    },
                    "after_purchase": purchase_id,
                },
            )
        )


def _redemptions(rng: random.Random, customer_ids: list[str], keyed: Keyed) -> None:
    """Redemptions of part of the welcome bonus: refused when points has not yet seen the
    enrolment, so either answer is right, but an accepted one must show in the ledger."""
    for customer_id in rng.sample(customer_ids, max(1, len(customer_ids) // 4)):
        points = rng.randint(10, 60)
        keyed.append(
            (
                1 + rng.random(),
                {
                    "kind": "redemption",
                    "customer_id": customer_id,
                    "service": "ingest",  # a till's call, relayed to points
                    "method": "POST",
                    "path": f"/v1/customers/{customer_id}/redemptions",
                    "expect": "either",
                    "points": points,
                    "body": {"points": points, "reward": "free coffee"},
                    "after_customer": customer_id,
                },
            )
        )


def _bad_call(
    rng: random.Random,
    n: int,
    customer_ids: list[str],
    purchase_calls: list[Spec],
    run_tag: str,
    now: datetime,
) -> tuple[float, Spec]:
    """Call number `n` of those that must be refused, of the kind its turn in BAD_KINDS says."""
    kind = BAD_KINDS[n % len(BAD_KINDS)]
    customer_id = rng.choice(customer_ids)
    key = 1 + rng.random()
    purchase_id = f"sim-{run_tag}-bad{n:05d}"
    base: Spec = {
        "kind": kind,
        "customer_id": customer_id,
        "service": "ingest",
        "method": "POST",
        "path": "/v1/purchases",
        "expect": "refuse",
        "purchase_id": purchase_id,
        "amount": Decimal("10.00"),
        "after_customer": customer_id,
    }
    purchase_body: dict[str, Any] = {
        "purchase_id": purchase_id,
        "customer_id": customer_id,
        "occurred_at": now.isoformat(),
        "currency": "EUR",
        "total": "10.00",
    }
    if kind == "bad-currency":
        return key, base | {"body": purchase_body | {"currency": "USD"}}
    if kind == "bad-signature":
        return key, base | {"body": purchase_body, "wrong_secret": True}
    if kind == "unknown-customer":
        stranger = f"sim-{run_tag}-stranger{n:05d}"
        return key, base | {
            "customer_id": stranger,
            "after_customer": None,
            "body": purchase_body | {"customer_id": stranger},
        }
    if kind == "over-refund" and purchase_calls:
        target = rng.choice(purchase_calls)
        # After every genuine refund of that purchase.
        return 2.5 + rng.random(), _over_refund(base, target, n, run_tag, now)
    # over-redemption (or over-refund with no purchase to refund)
    return key, base | {
        "kind": "over-redemption",
        "service": "ingest",  # a till's call, relayed to points
        "path": f"/v1/customers/{customer_id}/redemptions",
        "purchase_id": None,
        "amount": Decimal(0),
        "points": 900_000,
        "body": {"points": 900_000, "reward": "a yacht"},
    }


def _over_refund(base: Spec, target: Spec, n: int, run_tag: str, now: datetime) -> Spec:
    return base | {
        "customer_id": target["customer_id"],
        "after_customer": None,
        "path": f"/v1/purchases/{target['purchase_id']}/refunds",
        "purchase_id": target["purchase_id"],
        "amount": target["amount"] + 1,
        "body": {
            "refund_id": f"sim-{run_tag}-badr{n:05d}",
            "amount": str(target["amount"] + 1),
            "occurred_at": now.isoformat(),
        },
        "after_purchase": target["purchase_id"],
    }


def _numbered(specs: Iterable[Spec]) -> tuple[Call, ...]:
    """The calls in plan order, each numbered and pointing at the call it waits for."""
    seq_of_customer: dict[str, int] = {}
    seq_of_purchase: dict[str, int] = {}
    calls: list[Call] = []
    for seq, spec in enumerate(specs):
        after: int | None = None
        if spec.get("after_customer"):
            after = seq_of_customer[spec["after_customer"]]
        if spec.get("after_purchase"):
            after = seq_of_purchase[spec["after_purchase"]]
        call = Call(
            seq=seq,
            kind=spec["kind"],
            customer_id=spec["customer_id"],
            service=spec["service"],
            method=spec["method"],
            path=spec["path"],
            body=spec["body"],
            expect=spec["expect"],
            after=after,
            purchase_id=spec.get("purchase_id"),
            amount=spec.get("amount", Decimal(0)),
            points=spec.get("points", 0),
            wrong_secret=spec.get("wrong_secret", False),
        )
        if call.kind == "enrol":
            seq_of_customer[call.customer_id] = seq
        elif call.kind == "purchase" and call.purchase_id:
            seq_of_purchase[call.purchase_id] = seq
        calls.append(call)
    return tuple(calls)


# --- what the accepted calls must have done ----------------------------------------------


@dataclass
class CustomerModel:
    """What one customer's accepted (and refused) calls imply."""

    customer_id: str
    purchases: dict[str, Decimal] = field(default_factory=dict)  # accepted: id -> total
    refunded: dict[str, Decimal] = field(default_factory=dict)  # accepted: purchase -> sum
    redemptions: list[int] = field(default_factory=list)  # accepted: points each
    refused_purchase_ids: set[str] = field(default_factory=set)
    # With an email address, notifications logs a welcome email (sent, held or suppressed,
    # as consent and the rules decide): the sign that it applied the enrolment.
    has_email: bool = False

    @property
    def qualifying_spend(self) -> Decimal:
        return sum(self.purchases.values(), Decimal(0)) - sum(self.refunded.values(), Decimal(0))


def build_model(plan: Plan, outcomes: Mapping[int, Outcome]) -> dict[str, CustomerModel]:
    """The model of every customer whose enrolment was accepted."""
    model: dict[str, CustomerModel] = {}
    for call in plan.calls:
        if call.kind == "enrol" and outcomes.get(call.seq) == "accepted":
            model[call.customer_id] = CustomerModel(
                call.customer_id, has_email=bool(call.body.get("email"))
            )
    for call in plan.calls:
        customer = model.get(call.customer_id)
        if customer is None:
            continue
        accepted = outcomes.get(call.seq) == "accepted"
        if call.kind == "purchase" and call.purchase_id:
            if accepted:
                customer.purchases[call.purchase_id] = call.amount
            else:
                customer.refused_purchase_ids.add(call.purchase_id)
        elif call.kind == "refund" and call.purchase_id and accepted:
            customer.refunded[call.purchase_id] = (
                customer.refunded.get(call.purchase_id, Decimal(0)) + call.amount
            )
        elif call.kind == "redemption" and accepted:
            customer.redemptions.append(call.points)
        elif call.kind in BAD_KINDS and call.purchase_id and call.path == "/v1/purchases":
            customer.refused_purchase_ids.add(call.purchase_id)
    return model


@dataclass(frozen=True)
class Observed:
    """What the services answer for one customer (None: not found / not yet there)."""

    balance: Mapping[str, Any] | None
    ledger: Sequence[Mapping[str, Any]]
    tier: Mapping[str, Any] | None
    notifications: Sequence[Mapping[str, Any]] = ()


def check_customer(model: CustomerModel, seen: Observed) -> list[str]:
    """Every way the services' answers disagree with the accepted calls; [] when they agree."""
    who = model.customer_id
    problems: list[str] = []
    if seen.balance is None:
        problems.append(f"{who}: points has no balance")
    elif seen.balance.get("available", 0) < 0:
        problems.append(f"{who}: available points negative ({seen.balance['available']})")
    by_purchase: dict[str, dict[str, int]] = {}
    for entry in seen.ledger:
        purchase_id = entry.get("purchase_id")
        if purchase_id:
            kinds = by_purchase.setdefault(purchase_id, {})
            kinds[entry["kind"]] = kinds.get(entry["kind"], 0) + int(entry["points"])
    if not any(e["kind"] == "bonus" and not e.get("purchase_id") for e in seen.ledger):
        problems.append(f"{who}: no welcome bonus in the ledger")
    for purchase_id, total in model.purchases.items():
        kinds = by_purchase.get(purchase_id, {})
        if "earn" not in kinds and "held" not in kinds:
            problems.append(f"{who}: accepted purchase {purchase_id} earned nothing")
            continue
        refunded = model.refunded.get(purchase_id, Decimal(0))
        earned = kinds.get("earn", 0)
        if refunded and "held" not in kinds and "bonus" not in kinds:
            expected = int((earned * refunded / total).to_integral_value(ROUND_DOWN))
            reversed_points = -kinds.get("reverse", 0)
            if reversed_points != expected:
                problems.append(
                    f"{who}: purchase {purchase_id} refunded {refunded} of {total}: "
                    f"{reversed_points} points reversed, expected {expected}"
                )
    for purchase_id in model.refused_purchase_ids & by_purchase.keys():
        problems.append(f"{who}: refused purchase {purchase_id} has ledger entries")
    redeemed = sorted(-int(e["points"]) for e in seen.ledger if e["kind"] == "redeem")
    if redeemed != sorted(model.redemptions):
        problems.append(
            f"{who}: redemptions in the ledger {redeemed}, accepted {sorted(model.redemptions)}"
        )
    if model.has_email and not any(
        n.get("template") == "welcome" and n.get("channel") == "email" for n in seen.notifications
    ):
        problems.append(f"{who}: notifications logged no welcome email")
    if seen.tier is None:
        problems.append(f"{who}: tiers does not know the customer")
    else:
        spend = Decimal(str(seen.tier["qualifying_spend"]))
        if spend != model.qualifying_spend:
            problems.append(
                f"{who}: qualifying spend {spend}, expected {model.qualifying_spend} "
                "(accepted purchases - refunds)"
            )
    return problems


def outcome_of(call: Call, status: int) -> Outcome:
    """A 5xx (or anything odd) is an error, never a refusal: the platform must not fail."""
    if status in (200, 201, 202):
        return "accepted"
    if 400 <= status < 500:
        return "refused"
    return "error"


def unexpected(call: Call, outcome: Outcome) -> str | None:
    """Why the outcome is wrong for the call, or None."""
    if outcome == "error":
        return f"{call.kind} #{call.seq} for {call.customer_id} failed"
    if call.expect == "accept" and outcome == "refused":
        return f"{call.kind} #{call.seq} for {call.customer_id} was refused"
    if call.expect == "refuse" and outcome == "accepted":
        return f"{call.kind} #{call.seq} for {call.customer_id} was accepted"
    return None


def kinds_in(calls: Iterable[Call]) -> list[str]:
    seen: dict[str, None] = {}
    for call in calls:
        seen.setdefault(call.kind, None)
    return list(seen)
