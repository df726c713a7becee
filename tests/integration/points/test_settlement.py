"""The coalition settlement and the liability by honouring partner on the real PostgreSQL:
points issued by one partner and spent at another (redemptions, captured holds, net of a
refund's give-back; a voided hold left out), valued at point_value, nets adding up to zero;
the period's bounds; and the report's cost at 100,000 members."""

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.jobs import clean, seed_points
from services.points.adapters.repositories.api import hold_repository
from services.points.adapters.repositories.consumer import consumer_repository
from services.points.domain.holds import Hold, HoldStatus
from services.points.domain.lots import Allocation, spend
from services.points.domain.model import EntryKind, LedgerEntry
from tests.integration.points.support import NOW, apply
from tests.support import factories
from tests.support.services import ADMIN, READER

pytestmark = pytest.mark.integration

FROM, TO = NOW - timedelta(hours=1), NOW + timedelta(hours=1)


def lot(customer: str, name: str, points: int, days: int, partner: str) -> LedgerEntry:
    return LedgerEntry(
        entry_id=f"{customer}/{name}",
        customer_id=customer,
        kind=EntryKind.EARN,
        points=points,
        reason="purchase",
        occurred_at=NOW - timedelta(days=1),
        available_at=NOW - timedelta(days=1),
        expires_at=NOW + timedelta(days=days),
        partner_id=partner,
    )


def a_hold(customer: str, hold_id: str, points: int, status: HoldStatus) -> Hold:
    return Hold(hold_id, customer, points, "till", NOW, NOW + timedelta(minutes=15), status)


async def spends_between_three_partners(engine: AsyncEngine) -> tuple[str, str, str, str]:
    """Partner A issued 300 points (expiring sooner), B 500, to one member, who spent 500 at
    C's till (A's 300, B's 200), 100 of B's at A on a hold captured, 50 on a hold at C that
    was voided; then paid a purchase at C with the 500 and had half of it refunded."""
    tag = uuid.uuid4().hex[:8]
    a, b, c = f"pa-{tag}", f"pb-{tag}", f"pc-{tag}"
    customer = f"c-{uuid.uuid4()}"
    lots = [lot(customer, "a", 300, 10, a), lot(customer, "b", 500, 200, b)]
    redemption, taken = spend(
        lots,
        [],
        kind=EntryKind.REDEEM,
        entry_id=f"{customer}.red",
        customer_id=customer,
        points=500,
        reason="till",
        now=NOW,
    )
    captured = LedgerEntry(f"{customer}.h1", customer, EntryKind.HOLD, -100, "till", NOW, NOW)
    voided = LedgerEntry(f"{customer}.h2", customer, EntryKind.HOLD, -50, "till", NOW, NOW)
    void = LedgerEntry(f"{customer}.h2:void", customer, EntryKind.RELEASE, 50, "void", NOW, NOW)
    drawn = [
        *taken,
        Allocation(captured.entry_id, f"{customer}/b", 100),
        Allocation(voided.entry_id, f"{customer}/b", 50),
        Allocation(void.entry_id, f"{customer}/b", -50),
    ]
    async with engine.begin() as conn:
        ledger = consumer_repository(conn)
        await ledger.record(
            [
                *lots,
                replace(redemption, partner_id=c, store_id="s1"),
                replace(captured, partner_id=a),
                replace(voided, partner_id=c),
                void,
            ]
        )
        await ledger.record_allocations([(customer, allocation) for allocation in drawn])
        holds = hold_repository(conn)
        await holds.add(a_hold(customer, captured.entry_id, 100, HoldStatus.CAPTURED))
        await holds.add(a_hold(customer, voided.entry_id, 50, HoldStatus.VOIDED))
    purchase_id = f"{customer}.p1"
    await apply(
        engine,
        [
            factories.purchase(
                customer,
                "50.00",
                at=NOW,
                occurred_at=NOW - timedelta(minutes=5),
                purchase_id=purchase_id,
                partner_id=c,
                redemption_id=redemption.entry_id,
            ),
            factories.refund(
                customer,
                purchase_id,
                "25.00",
                refund_id=f"{customer}.r1",
                at=NOW,
                occurred_at=NOW - timedelta(minutes=1),
                partner_id=c,
            ),
        ],
    )
    return customer, a, b, c


async def settlement(points: httpx.AsyncClient, **params: str) -> httpx.Response:
    return await points.get("/v1/reports/settlement", params=params, headers=ADMIN)


async def test_the_issuer_owes_the_honourer_the_points_spent_net_of_what_was_given_back(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    _, a, b, c = await spends_between_three_partners(engine)

    response = await settlement(points, **{"from": FROM.isoformat(), "to": TO.isoformat()})

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["point_value"], body["currency"]) == ("0.01", "EUR")
    mine = {a, b, c}
    pairs = {
        (p["issued_by"], p["honoured_by"]): (p["points"], p["value"])
        for p in body["pairs"]
        if p["issued_by"] in mine or p["honoured_by"] in mine
    }
    # A's 300 spent at C, 250 of them given back by the refund of half (soonest first).
    assert pairs == {(a, c): (50, "0.50"), (b, c): (200, "2.00"), (b, a): (100, "1.00")}
    positions = {
        p["partner_id"]: (p["owes"], p["is_owed"], p["net"])
        for p in body["partners"]
        if p["partner_id"] in mine
    }
    assert positions == {
        a: ("0.50", "1.00", "0.50"),
        b: ("3.00", "0.00", "-3.00"),
        c: ("0.00", "2.50", "2.50"),
    }
    assert sum((Decimal(p["net"]) for p in body["partners"]), Decimal(0)) == 0


async def test_the_points_an_unused_coupon_gave_back_settle_nothing(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    tag = uuid.uuid4().hex[:8]
    issuer, honourer = f"pi-{tag}", f"ph-{tag}"
    customer = f"c-{uuid.uuid4()}"
    lots = [lot(customer, "a", 100, 30, issuer)]
    redemption = LedgerEntry(
        f"{customer}.red", customer, EntryKind.REDEEM, -40, "reward", NOW, NOW, partner_id=honourer
    )
    # As the coupon-expiry job gives a reward's points back (domain/coupons.py).
    back = LedgerEntry(
        f"{customer}.red:coupon-expired", customer, EntryKind.RELEASE, 40, "coupon expired",
        NOW, NOW, partner_id=honourer,
    )  # fmt: skip
    async with engine.begin() as conn:
        ledger = consumer_repository(conn)
        await ledger.record([*lots, redemption, back])
        await ledger.record_allocations(
            [
                (customer, Allocation(redemption.entry_id, f"{customer}/a", 40)),
                (customer, Allocation(back.entry_id, f"{customer}/a", -40)),
            ]
        )

    response = await settlement(points, **{"from": FROM.isoformat(), "to": TO.isoformat()})

    assert response.status_code == 200, response.text
    assert [p for p in response.json()["pairs"] if p["issued_by"] == issuer] == []


async def test_the_liability_names_what_each_partner_honoured(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    _, a, _, c = await spends_between_three_partners(engine)

    response = await points.get(
        "/v1/reports/liability", params={"as_of": TO.isoformat()}, headers=ADMIN
    )

    assert response.status_code == 200, response.text
    body = response.json()
    by_partner = {p["partner_id"]: p for p in body["partners"]}
    assert (by_partner[c]["honoured"], by_partner[c]["honoured_value"]) == (250, "2.50")
    assert (by_partner[a]["honoured"], by_partner[a]["honoured_value"]) == (100, "1.00")
    assert {"issued", "spent", "expired", "reversed", "outstanding", "in_lots", "debt"} <= set(
        by_partner[a]
    )
    assert body["total"]["honoured"] == sum(p["honoured"] for p in body["partners"])
    assert body["point_value"] == "0.01"


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"from": FROM.isoformat(), "to": FROM.isoformat()}, 422),
        ({"from": TO.isoformat(), "to": FROM.isoformat()}, 422),
        ({"from": FROM.isoformat(), "to": (FROM + timedelta(days=367)).isoformat()}, 422),
        ({"from": FROM.isoformat()}, 422),
        ({"from": "2026-01-01T00:00:00", "to": TO.isoformat()}, 422),  # not an aware instant
    ],
)
async def test_a_period_that_is_not_one_is_refused(
    points: httpx.AsyncClient, params: dict[str, str], status: int
) -> None:
    response = await settlement(points, **params)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_settlement_is_for_administrators(points: httpx.AsyncClient) -> None:
    params = {"from": FROM.isoformat(), "to": TO.isoformat()}
    refused = await points.get("/v1/reports/settlement", params=params, headers=READER)
    assert refused.status_code == 403


# --- at scale ----------------------------------------------------------------------------------

MEMBERS = 100_000
PREFIX = "settlement-at-scale-"
# Events carry instants in 2000-2999 only; the other tests' spends are later than this.
AS_OF = datetime(2001, 6, 1, tzinfo=UTC)


@pytest.fixture
async def seeded(engine: AsyncEngine) -> AsyncIterator[str]:
    """100,000 members as the benchmark seeds them (a tenth with a redemption of 20), their
    lots issued by one partner and their redemptions honoured by another."""
    tag = uuid.uuid4().hex[:8]
    prefix = f"{PREFIX}{tag}-"
    bounds = {"low": prefix, "high": prefix + "\U0010ffff", "tag": tag}
    async with engine.begin() as conn:
        await clean(conn, "points", PREFIX)  # what an interrupted run left
        await seed_points(conn, prefix, MEMBERS, AS_OF)
        await conn.execute(
            sa.text(
                "UPDATE ledger_entries SET partner_id = CASE kind WHEN 'earn' THEN "
                "'issuer-' || :tag ELSE 'honourer-' || :tag END "
                "WHERE customer_id >= :low AND customer_id < :high"
            ),
            bounds,
        )
        await conn.execute(sa.text("ANALYZE ledger_entries"))
    try:
        yield tag
    finally:
        async with engine.begin() as conn:
            await clean(conn, "points", prefix)


async def test_the_settlement_of_100000_members_is_one_aggregate_and_quick(
    points: httpx.AsyncClient, seeded: str
) -> None:
    params = {"from": (AS_OF - timedelta(days=60)).isoformat(), "to": AS_OF.isoformat()}

    started = time.monotonic()
    response = await settlement(points, **params)
    took = time.monotonic() - started

    assert response.status_code == 200, response.text
    pairs = [p for p in response.json()["pairs"] if p["issued_by"] == f"issuer-{seeded}"]
    assert pairs == [
        {
            "issued_by": f"issuer-{seeded}",
            "honoured_by": f"honourer-{seeded}",
            "points": 20 * MEMBERS // 10,
            "value": "2000.00",
        }
    ]
    # On the test stack's shared cores: seconds would mean a scan per member, not one query.
    assert took < 5, f"the settlement of {MEMBERS} members took {took:.2f}s"
