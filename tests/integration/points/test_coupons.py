"""Coupons on the real PostgreSQL and Kafka: taken once at a till (200, then 409 used, 410
expired, 404 unknown, 403 another partner's reward), the taking till credited with an
unattributed redemption, read with their code, and expired by the `expire-coupons` job with
their points given back (never into expired lots) or forfeited."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.points.adapters.tables import allocations, coupons, ledger_entries
from services.points.api.app import create_app
from services.points.settings import PointsSettings
from shared.messaging import events, topics
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


async def issued_coupon(
    points: httpx.AsyncClient,
    customer: str,
    headers: dict[str, str] = ADMIN,
    **reward_fields: Any,
) -> dict[str, Any]:
    """A reward created and redeemed by the customer; the redemption's answer."""
    body = {"name": "Free coffee", "points_cost": 100, "kind": "coupon", **reward_fields}
    reward = await points.post("/v1/rewards", json=body, headers=ADMIN)
    assert reward.status_code == 201, reward.text
    response = await points.post(
        f"/v1/customers/{customer}/redemptions",
        json={"reward_id": reward.json()["id"]},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    redeemed: dict[str, Any] = response.json()
    return redeemed


async def use(
    points: httpx.AsyncClient, code: str, headers: dict[str, str], **body: str
) -> httpx.Response:
    return await points.post(f"/v1/coupons/{code}/redeem", json=body, headers=headers)


async def test_a_coupon_is_taken_once_and_its_till_credited(
    stack: Stack, points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (300, 60))
    redeemed = await issued_coupon(points, customer)  # by an administrator: no partner
    code = redeemed["coupon"]["code"]
    key = {**till("p-shop", "s-header"), "Idempotency-Key": str(uuid.uuid4())}
    first = await use(points, code.lower().replace("-", ""), key, purchase_id="pu-1")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["status"] == "redeemed"
    assert (body["customer_id"], body["reward"], body["partner_id"]) == (
        customer,
        "Free coffee",
        "p-shop",
    )
    assert (body["store_id"], body["purchase_id"]) == ("s-header", "pu-1")
    replayed = await use(points, code.lower().replace("-", ""), key, purchase_id="pu-1")
    assert replayed.status_code == 200 and replayed.json() == body
    assert replayed.headers["Idempotent-Replayed"] == "true"

    again = await use(points, code, till("p-shop"))
    assert again.status_code == 409
    assert again.json()["type"].endswith(":coupon-used")
    assert datetime.fromisoformat(again.json()["redeemed_at"]) == datetime.fromisoformat(
        body["redeemed_at"]
    )
    async with engine.connect() as conn:
        entry = (
            await conn.execute(
                sa.select(ledger_entries).where(
                    ledger_entries.c.entry_id == redeemed["redemption_id"]
                )
            )
        ).one()
    assert (entry.partner_id, entry.store_id) == ("p-shop", "s-header")

    async def announced() -> Any:
        found = [
            e
            for e in await events_for(stack.kafka, topics.POINTS, customer)
            if e.type == events.COUPON_REDEEMED
        ]
        return found or None

    (event,) = await eventually(announced, what="coupon.redeemed")
    assert (event.data["partner_id"], event.data["store_id"], event.data["purchase_id"]) == (
        "p-shop",
        "s-header",
        "pu-1",
    )


async def test_a_redemption_a_till_made_keeps_its_partner_when_another_takes_the_coupon(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (300, 60))
    redeemed = await issued_coupon(points, customer, till("p-first", "s-1"))
    body_store = await use(points, redeemed["coupon"]["code"], till("p-second"), store_id="s-2")
    assert body_store.status_code == 200, body_store.text
    assert (body_store.json()["partner_id"], body_store.json()["store_id"]) == ("p-second", "s-2")
    async with engine.connect() as conn:
        partner = await conn.scalar(
            sa.select(ledger_entries.c.partner_id).where(
                ledger_entries.c.entry_id == redeemed["redemption_id"]
            )
        )
    assert partner == "p-first"


async def test_another_partners_reward_unknown_and_expired_coupons_are_refused(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (300, 60))
    theirs = await issued_coupon(points, customer, partner_id="p-owner")
    refused = await use(points, theirs["coupon"]["code"], till("p-other"))
    assert refused.status_code == 403
    assert refused.json()["type"].endswith(":another-partners-reward")
    assert (await use(points, theirs["coupon"]["code"], till("p-owner"))).status_code == 200

    unknown = await use(points, "ZZZZ-ZZZZ-ZZZZ-ZZZZ", till("p-owner"))
    assert unknown.status_code == 404 and unknown.json()["type"].endswith(":unknown-coupon")
    not_a_code = await use(points, "short", till("p-owner"))
    assert not_a_code.status_code == 404

    redeemed = await issued_coupon(points, customer)
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(coupons)
            .where(coupons.c.coupon_id == redeemed["coupon"]["coupon_id"])
            .values(expires_at=NOW - timedelta(minutes=1))
        )
    late = await use(points, redeemed["coupon"]["code"], till("p-owner"))
    assert late.status_code == 410
    assert late.json()["type"].endswith(":coupon-expired")
    assert "expires_at" in late.json()


async def test_a_coupon_is_read_with_its_code_by_id_and_in_its_members_list(
    points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_with_lots(engine, (300, 60))
    first = await issued_coupon(points, customer)
    second = await issued_coupon(points, customer)
    coupon_id = first["coupon"]["coupon_id"]
    read = await points.get(f"/v1/coupons/{coupon_id}", headers=READER)
    assert read.status_code == 200, read.text
    body = read.json()
    assert (body["code"], body["status"], body["customer_id"]) == (
        first["coupon"]["code"],
        "issued",
        customer,
    )
    assert body["redemption_id"] == first["redemption_id"]
    listed = await points.get(f"/v1/customers/{customer}/coupons", headers=READER)
    assert listed.status_code == 200
    assert {c["coupon_id"] for c in listed.json()["coupons"]} == {
        coupon_id,
        second["coupon"]["coupon_id"],
    }
    assert (await points.get(f"/v1/coupons/{coupon_id}", headers=till("p1"))).status_code == 403
    missing = await points.get(f"/v1/coupons/{uuid.uuid4()}", headers=READER)
    assert missing.status_code == 404


async def run_job(points: httpx.AsyncClient, as_of: datetime) -> dict[str, Any]:
    response = await points.post(
        "/v1/admin/jobs/expire-coupons", params={"as_of": as_of.isoformat()}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    [summary] = response.json()["jobs"]
    assert isinstance(summary, dict)
    return summary


async def test_an_unused_coupon_expires_and_gives_back_what_its_lots_still_hold(
    stack: Stack, points: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # 60 points from a lot expiring in 5 days, 40 from one expiring in 90: after 10 days
    # only the 40 can go back.
    customer = await customer_with_lots(engine, (60, 5), (1000, 90))
    redeemed = await issued_coupon(points, customer, coupon_validity_days=1)
    used = await issued_coupon(points, customer, coupon_validity_days=1)
    assert (await use(points, used["coupon"]["code"], ADMIN)).status_code == 200
    async with engine.connect() as conn:
        drawn = dict(
            (
                await conn.execute(
                    sa.select(allocations.c.lot_id, allocations.c.points).where(
                        allocations.c.entry_id == redeemed["redemption_id"]
                    )
                )
            ).all()
        )
    assert drawn == {f"{customer}/lot0": 60, f"{customer}/lot1": 40}

    as_of = NOW + timedelta(days=10)
    summary = await run_job(points, as_of)
    assert summary["expired_coupons"] >= 1
    read = (
        await points.get(f"/v1/coupons/{redeemed['coupon']['coupon_id']}", headers=READER)
    ).json()
    assert (read["status"], read["points_returned"]) == ("expired", 40)
    kept = (await points.get(f"/v1/coupons/{used['coupon']['coupon_id']}", headers=READER)).json()
    assert kept["status"] == "redeemed"
    async with engine.connect() as conn:
        release = (
            await conn.execute(
                sa.select(ledger_entries).where(
                    ledger_entries.c.entry_id == f"{redeemed['redemption_id']}:coupon-expired"
                )
            )
        ).one()
    assert (release.kind, release.points) == ("release", 40)
    again = await run_job(points, as_of)
    assert again["expired_coupons"] == 0

    async def announced() -> Any:
        found = [
            e
            for e in await events_for(stack.kafka, topics.POINTS, customer)
            if e.type == events.COUPON_EXPIRED
        ]
        return found or None

    (event,) = await eventually(announced, what="coupon.expired")
    assert event.data["coupon_id"] == redeemed["coupon"]["coupon_id"]
    assert event.data["points_returned"] == 40
    balance = (await points.get(f"/v1/customers/{customer}/balance", headers=READER)).json()
    # 1060 - 100 - 100 + 40 given back, less the 0 left in the first lot now.
    assert balance["available"] == 900


async def test_with_coupon_expiry_forfeit_nothing_goes_back(
    stack: Stack, engine: AsyncEngine, tmp_path: Any
) -> None:
    program = tmp_path / "program.yaml"
    default = (
        PointsSettings.model_fields["program_file"]
        .default.read_text()
        .replace("coupon_expiry: refund_points", "coupon_expiry: forfeit")
    )
    assert "coupon_expiry: forfeit" in default
    program.write_text(default)
    settings = settings_for(
        PointsSettings,
        stack,
        "points",
        till_token_sha256=sha256_hex(TILL_TOKEN),
        program_file=str(program),
        run_workers="false",
    )
    async with running(create_app, settings) as (_, forfeiting):
        customer = await customer_with_lots(engine, (300, 90))
        redeemed = await issued_coupon(forfeiting, customer, coupon_validity_days=1)
        await run_job(forfeiting, NOW + timedelta(days=2))
        read = (
            await forfeiting.get(f"/v1/coupons/{redeemed['coupon']['coupon_id']}", headers=READER)
        ).json()
        assert (read["status"], read["points_returned"]) == ("expired", 0)
        balance = (await forfeiting.get(f"/v1/customers/{customer}/balance", headers=READER)).json()
        assert balance["available"] == 200
