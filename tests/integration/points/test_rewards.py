"""The reward catalogue on the real PostgreSQL and Kafka: rewards created, changed and retired;
what a member may redeem now and why not; a reward redeemed into a coupon, announced through
the outbox; stock and per-customer limits that hold under concurrent redemptions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.points.adapters.repositories.api import ledger_repository
from services.points.adapters.repositories.catalogue import catalogue_repository
from services.points.adapters.tables import coupons, customer_tiers, ledger_entries, rewards
from services.points.api.app import create_app
from services.points.settings import PointsSettings
from services.points.usecases.rewards import customer_rewards
from shared.messaging import events, topics
from shared.web.deps import Caller
from tests.integration.points.support import NOW, customer_with_lots
from tests.support.kafka import events_for
from tests.support.polling import eventually
from tests.support.services import ADMIN, READER, running, settings_for
from tests.support.stack import Stack, sha256_hex

pytestmark = pytest.mark.integration

TILL_TOKEN = "test-till-token-0123456789abcdef"


def till(partner: str, store: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {TILL_TOKEN}", "Fedelta-Partner-Id": partner}
    return headers if store is None else {**headers, "Fedelta-Store-Id": store}


@pytest.fixture(scope="module")
async def points(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The points service with a till token (ingest's, in production)."""
    stack.migrate("points")
    settings = settings_for(
        PointsSettings, stack, "points", till_token_sha256=sha256_hex(TILL_TOKEN)
    )
    async with running(create_app, settings) as (_, client):
        yield client


async def create_reward(points: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"name": f"reward {uuid.uuid4()}", "points_cost": 100, "kind": "coupon", **fields}
    response = await points.post("/v1/rewards", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def redeem(
    points: httpx.AsyncClient, customer: str, reward_id: str, headers: dict[str, str] = ADMIN
) -> httpx.Response:
    return await points.post(
        f"/v1/customers/{customer}/redemptions", json={"reward_id": reward_id}, headers=headers
    )


async def test_a_reward_is_created_with_every_field_read_changed_and_retired(
    points: httpx.AsyncClient,
) -> None:
    starts = (NOW - timedelta(days=1)).isoformat()
    ends = (NOW + timedelta(days=30)).isoformat()
    key = {**ADMIN, "Idempotency-Key": str(uuid.uuid4())}
    body = {
        "name": "5 EUR off",
        "points_cost": 500,
        "kind": "discount",
        "value": "5.00",
        "partner_id": "p-acme",
        "min_tier": "silver",
        "stock": 10,
        "per_customer_limit": 2,
        "starts_at": starts,
        "ends_at": ends,
        "coupon_validity_days": 14,
        "description": "On any purchase",
    }
    first = await points.post("/v1/rewards", json=body, headers=key)
    assert first.status_code == 201, first.text
    created = first.json()
    again = await points.post("/v1/rewards", json=body, headers=key)
    assert again.json() == created and again.headers["Idempotent-Replayed"] == "true"
    for name in ("name", "points_cost", "kind", "value", "partner_id", "min_tier", "stock"):
        assert created[name] == body[name]
    assert (created["redeemed"], created["retired_at"], created["coupon_validity_days"]) == (
        0,
        None,
        14,
    )
    reward_id = created["id"]
    read = await points.get(f"/v1/rewards/{reward_id}", headers=READER)
    assert read.json() == created

    patched = await points.patch(
        f"/v1/rewards/{reward_id}", json={"stock": 20, "min_tier": None}, headers=ADMIN
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["stock"], patched.json()["min_tier"]) == (20, None)
    listed = (await points.get("/v1/rewards", headers=READER)).json()["items"]
    assert reward_id in {r["id"] for r in listed}

    retired = await points.delete(f"/v1/rewards/{reward_id}", headers=ADMIN)
    assert retired.status_code == 200 and retired.json()["retired_at"] is not None
    still = await points.get(f"/v1/rewards/{reward_id}", headers=READER)
    assert still.json()["retired_at"] == retired.json()["retired_at"]
    active = (await points.get("/v1/rewards", headers=READER)).json()["items"]
    assert reward_id not in {r["id"] for r in active}
    every = await points.get("/v1/rewards", params={"include_ended": "true"}, headers=READER)
    assert reward_id in {r["id"] for r in every.json()["items"]}


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "points_cost": 0, "kind": "coupon"},
        {"name": "x", "points_cost": 10, "kind": "voucher"},
        {"name": "x", "points_cost": 10, "kind": "discount"},
        {"name": "x", "points_cost": 10, "kind": "discount", "value": 5.0},
        {"name": "x", "points_cost": 10, "kind": "coupon", "stock": -1},
        {"name": "x", "points_cost": 10, "kind": "coupon", "per_customer_limit": 0},
        {"name": "x", "points_cost": 10, "kind": "coupon", "coupon_validity_days": 3651},
        {"name": "x", "points_cost": 10, "kind": "coupon", "min_tier": "diamond"},
        {"name": "x", "points_cost": 10, "kind": "coupon", "surprise": True},
        {
            "name": "x",
            "points_cost": 10,
            "kind": "coupon",
            "starts_at": "2027-01-02T00:00:00Z",
            "ends_at": "2027-01-01T00:00:00Z",
        },
    ],
)
async def test_a_bad_reward_is_a_422_problem_that_creates_nothing(
    points: httpx.AsyncClient, engine: AsyncEngine, body: dict[str, Any]
) -> None:
    async with engine.connect() as conn:
        before = await conn.scalar(sa.select(sa.func.count()).select_from(rewards))
    response = await points.post("/v1/rewards", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(rewards)) == before


async def test_the_catalogue_is_the_administrators(points: httpx.AsyncClient) -> None:
    body = {"name": "x", "points_cost": 10, "kind": "coupon"}
    assert (await points.post("/v1/rewards", json=body, headers=READER)).status_code == 403
    assert (await points.post("/v1/rewards", json=body, headers=till("p1"))).status_code == 403
    assert (await points.get("/v1/rewards", headers=till("p1"))).status_code == 403
    unknown = await points.get(f"/v1/rewards/{uuid.uuid4()}", headers=READER)
    assert unknown.status_code == 404 and unknown.json()["type"].endswith(":unknown-reward")


async def test_a_member_sees_what_they_may_redeem_now_and_why_not(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (300, 60))
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(customer_tiers).values(customer_id=customer, tier="silver", effective_at=NOW)
        )
    open_one = await create_reward(points, points_cost=200)
    gold = await create_reward(points, min_tier="gold")
    dear = await create_reward(points, points_cost=301)
    later = await create_reward(points, starts_at=(NOW + timedelta(days=3)).isoformat())
    once = await create_reward(points, points_cost=50, per_customer_limit=1)
    other_partner = await create_reward(points, partner_id="p-other")
    assert (await redeem(points, customer, once["id"])).status_code == 201

    response = await points.get(f"/v1/customers/{customer}/rewards", headers=READER)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["customer_id"], body["available"]) == (customer, 250)
    seen = {r["id"]: r for r in body["rewards"]}
    expected = {
        open_one["id"]: (True, True, []),
        gold["id"]: (True, False, ["tier"]),
        dear["id"]: (False, False, ["points"]),
        later["id"]: (True, False, ["window"]),
        once["id"]: (True, False, ["limit"]),
        other_partner["id"]: (True, True, []),
    }
    for reward_id, (affordable, redeemable, why_not) in expected.items():
        shown = seen[reward_id]
        assert (shown["affordable"], shown["redeemable"], shown["why_not"]) == (
            affordable,
            redeemable,
            why_not,
        ), shown
    # At a till: only what any partner, or that till's partner, honours.
    at_till = await points.get(f"/v1/customers/{customer}/rewards", headers=till("p-mine"))
    assert at_till.status_code == 200, at_till.text
    assert other_partner["id"] not in {r["id"] for r in at_till.json()["rewards"]}
    assert open_one["id"] in {r["id"] for r in at_till.json()["rewards"]}
    unknown = await points.get(f"/v1/customers/c-{uuid.uuid4()}/rewards", headers=READER)
    assert unknown.status_code == 404


async def test_a_reward_redeemed_issues_a_coupon_and_announces_both(
    stack: Stack, points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (500, 60))
    reward = await create_reward(points, points_cost=120, coupon_validity_days=10, stock=5)
    response = await redeem(points, customer, reward["id"], till("p-1", "s-9"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["points"], body["reward_id"], body["available_after"]) == (
        120,
        reward["id"],
        380,
    )
    coupon = body["coupon"]
    assert len(coupon["code"]) == 19 and coupon["code"].count("-") == 3
    async with engine.connect() as conn:
        entry = (
            await conn.execute(
                sa.select(ledger_entries).where(ledger_entries.c.entry_id == body["redemption_id"])
            )
        ).one()
        stored = (
            await conn.execute(sa.select(coupons).where(coupons.c.coupon_id == coupon["coupon_id"]))
        ).one()
        counted = await conn.scalar(
            sa.select(rewards.c.redeemed).where(rewards.c.reward_id == reward["id"])
        )
    assert (entry.kind, entry.points, entry.reward_id) == ("redeem", -120, reward["id"])
    assert (entry.partner_id, entry.store_id) == ("p-1", "s-9")
    assert (stored.status, stored.code, counted) == ("issued", coupon["code"].replace("-", ""), 1)
    lasts = stored.expires_at - stored.issued_at
    assert lasts == timedelta(days=10)

    async def announced() -> dict[str, Any] | None:
        found = {e.type: e for e in await events_for(stack.kafka, topics.POINTS, customer)}
        wanted = (events.POINTS_REDEEMED, events.COUPON_ISSUED)
        return found if all(t in found for t in wanted) else None

    found = await eventually(announced, what="points.redeemed and coupon.issued")
    redeemed = found[events.POINTS_REDEEMED].data
    assert (redeemed["reward_id"], redeemed["partner_id"], redeemed["store_id"]) == (
        reward["id"],
        "p-1",
        "s-9",
    )
    issued = found[events.COUPON_ISSUED].data
    assert issued["coupon_id"] == coupon["coupon_id"]
    assert issued["redemption_id"] == body["redemption_id"]
    assert coupon["code"] not in str(issued) and stored.code not in str(issued)


async def test_a_rewards_own_partner_honours_it_whichever_till_redeems_it(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (500, 60))
    reward = await create_reward(points, partner_id="p-owner")
    response = await redeem(points, customer, reward["id"], till("p-till", "s-1"))
    assert response.status_code == 201, response.text
    by_admin = await redeem(points, customer, reward["id"])
    assert by_admin.status_code == 201, by_admin.text
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(ledger_entries.c.entry_id, ledger_entries.c.partner_id).where(
                ledger_entries.c.entry_id.in_(
                    [response.json()["redemption_id"], by_admin.json()["redemption_id"]]
                )
            )
        )
        partners = {row.partner_id for row in rows}
    assert partners == {"p-owner"}


async def test_a_reward_not_redeemable_is_a_409_with_its_reasons_and_spends_nothing(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (500, 60))
    gold = await create_reward(points, min_tier="gold", stock=0)
    response = await redeem(points, customer, gold["id"])
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"].endswith(":reward-unavailable")
    assert problem["reasons"] == ["tier", "stock"]
    dear = await create_reward(points, points_cost=501)
    short = await redeem(points, customer, dear["id"])
    assert short.status_code == 409 and short.json()["type"].endswith(":not-enough-points")
    retired = await create_reward(points)
    await points.delete(f"/v1/rewards/{retired['id']}", headers=ADMIN)
    gone = await redeem(points, customer, retired["id"])
    assert gone.status_code == 409 and gone.json()["reasons"] == ["window"]
    unknown = await redeem(points, customer, str(uuid.uuid4()))
    assert unknown.status_code == 404 and unknown.json()["type"].endswith(":unknown-reward")
    balance = (await points.get(f"/v1/customers/{customer}/balance", headers=READER)).json()
    assert balance["available"] == 500
    async with engine.connect() as conn:
        issued = await conn.scalar(
            sa.select(sa.func.count()).select_from(coupons).where(coupons.c.customer_id == customer)
        )
        counted = await conn.scalar(
            sa.select(rewards.c.redeemed).where(rewards.c.reward_id == dear["id"])
        )
    assert (issued, counted) == (0, 0)


async def test_concurrent_redemptions_never_oversell_a_rewards_stock(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customers = [await customer_with_lots(engine, (1000, 60)) for _ in range(8)]
    reward = await create_reward(points, points_cost=10, stock=3)
    answers = await asyncio.gather(*(redeem(points, c, reward["id"]) for c in customers))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 3 + [409] * 5, [a.text for a in answers]
    assert all(a.json()["reasons"] == ["stock"] for a in answers if a.status_code == 409)
    async with engine.connect() as conn:
        issued = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(coupons)
            .where(coupons.c.reward_id == reward["id"])
        )
        counted = await conn.scalar(
            sa.select(rewards.c.redeemed).where(rewards.c.reward_id == reward["id"])
        )
    assert (issued, counted) == (3, 3)


async def test_concurrent_redemptions_by_one_member_keep_the_per_customer_limit(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (1000, 60))
    reward = await create_reward(points, points_cost=10, per_customer_limit=2)
    answers = await asyncio.gather(*(redeem(points, customer, reward["id"]) for _ in range(6)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 2 + [409] * 4, [a.text for a in answers]
    balance = (await points.get(f"/v1/customers/{customer}/balance", headers=READER)).json()
    assert balance["available"] == 980


async def test_a_free_form_redemption_and_a_reward_cannot_be_asked_at_once(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (100, 60))
    url = f"/v1/customers/{customer}/redemptions"
    both = await points.post(
        url, json={"points": 10, "reward": "x", "reward_id": "r"}, headers=ADMIN
    )
    neither = await points.post(url, json={"points": 10}, headers=ADMIN)
    assert (both.status_code, neither.status_code) == (422, 422)
    free = await points.post(url, json={"points": 10, "reward": "x"}, headers=ADMIN)
    assert free.status_code == 201
    assert (free.json()["reward_id"], free.json()["coupon"]) == (None, None)


async def test_a_members_rewards_cost_the_same_few_queries_however_many_rewards(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (100, 60))
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    async def queries() -> tuple[int, int]:
        statements.clear()
        sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            async with engine.connect() as conn:
                listed = await customer_rewards(
                    ledger_repository(conn),
                    catalogue_repository(conn),
                    Caller("read"),
                    customer,
                    NOW,
                )
        finally:
            sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
        return len(statements), len(listed.rewards)

    await create_reward(points)
    few, listed_before = await queries()
    for _ in range(5):
        await create_reward(points)
    many, listed_after = await queries()
    assert listed_after >= listed_before + 5
    assert many == few <= 6, statements
