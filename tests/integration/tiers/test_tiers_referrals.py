"""Tiers by referrals and visits (issue 25) on the real PostgreSQL and Kafka: the referrals
learnt from the customers topic, qualified by the `qualify-referrals` job once the referred
member's first purchase has been kept past the return window, and the progress per route."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from services.tiers.adapters.program_file import DEFAULT_PROGRAM_FILE
from services.tiers.adapters.tables import qualifying_activity, referrals
from services.tiers.api.app import create_app
from services.tiers.domain.model import Match, Program, TierDefinition
from services.tiers.domain.rebuild import PROGRAM_CHANGE
from services.tiers.settings import TiersSettings
from services.tiers.usecases.replay import Replay
from shared.clock import SystemClock
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from tests.integration.tiers.test_tiers import send_all
from tests.support import factories
from tests.support.database import engine_for
from tests.support.kafka import events_for
from tests.support.polling import eventually
from tests.support.services import ADMIN, READER, running, settings_for
from tests.support.stack import Stack
from tests.support.tiers import forget_switched_programs

pytestmark = pytest.mark.integration

WITHIN = 60.0
WINDOW_DAYS = 14
ROUTES = [
    {"name": "bronze", "threshold": "0"},
    {"name": "silver", "threshold": "500", "visits": 3},
    {"name": "gold", "threshold": "2000", "referrals": 2},
    {"name": "platinum", "threshold": "5000", "referrals": 5, "visits": 10, "match": "all"},
]


@pytest.fixture(scope="module")
async def settings(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> TiersSettings:
    """The service under a program with routes (gold at 2,000 spend or 2 referrals)."""
    document = yaml.safe_load(DEFAULT_PROGRAM_FILE.read_text())
    document.update(tiers=ROUTES, referral_return_window_days=WINDOW_DAYS)
    path = tmp_path_factory.mktemp("tiers-routes") / "program.yaml"
    path.write_text(yaml.safe_dump(document))
    async with engine_for(stack, "tiers", pool_size=1) as engine:
        await forget_switched_programs(engine)
    return settings_for(TiersSettings, stack, "tiers", program_file=str(path))


@pytest.fixture(scope="module")
async def client(settings: TiersSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app, settings) as (_, client):
        yield client


def new_id(role: str) -> str:
    return f"tiers-it-{role}-{uuid.uuid4()}"


async def run_job(client: httpx.AsyncClient, as_of: datetime) -> dict[str, Any]:
    response = await client.post(
        "/v1/admin/jobs/qualify-referrals", params={"as_of": as_of.isoformat()}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    [summary] = response.json()["jobs"]
    assert isinstance(summary, dict)
    return summary


async def tier_of(client: httpx.AsyncClient, customer_id: str) -> dict[str, Any] | None:
    response = await client.get(f"/v1/customers/{customer_id}/tier", headers=READER)
    if response.status_code != 200:
        return None
    body: dict[str, Any] = response.json()
    return body


async def test_a_member_climbs_to_gold_by_two_friends_kept_past_the_window(
    stack: Stack, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    now = datetime.now(UTC)
    referrer, kept, also_kept, returned = (new_id(r) for r in ("x", "f1", "f2", "f3"))
    bought_at = now - timedelta(days=WINDOW_DAYS + 2)
    await send_all(
        stack,
        [
            factories.enrolment(referrer, at=now - timedelta(days=60)),
            *(
                factories.enrolment(f, at=bought_at - timedelta(days=1), referred_by=referrer)
                for f in (kept, also_kept, returned)
            ),
            factories.purchase(kept, "40", at=bought_at, purchase_id=f"{kept}-p"),
            # The first purchase counts, not a later one.
            factories.purchase(also_kept, "15", at=bought_at, purchase_id=f"{also_kept}-p1"),
            factories.purchase(also_kept, "90", at=now - timedelta(days=1)),
            factories.purchase(returned, "70", at=bought_at, purchase_id=f"{returned}-p"),
            factories.refund(returned, f"{returned}-p", "70", at=bought_at + timedelta(days=3)),
            *(factories.purchase(referrer, "25", at=now - timedelta(days=d)) for d in (5, 4)),
        ],
    )

    async def all_recorded() -> bool:
        async with engine.connect() as conn:
            known = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(referrals)
                .where(
                    referrals.c.referrer_id == referrer,
                    referrals.c.first_purchase_id.is_not(None),
                )
            )
            refunds = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(qualifying_activity)
                .where(
                    qualifying_activity.c.customer_id == returned,
                    qualifying_activity.c.visits == -1,
                )
            )
            mine = await tier_of(client, referrer)
        return known == 3 and refunds == 1 and mine is not None and mine["qualifying_visits"] == 2

    await eventually(all_recorded, within=WITHIN, what="the referrals and purchases recorded")

    before = await tier_of(client, referrer)
    assert before is not None
    assert before["tier"] == "bronze"
    assert (before["next_tier"], before["amount_to_next_tier"]) == ("silver", "450.00")
    assert (before["visits_to_next_tier"], before["referrals_to_next_tier"]) == (1, None)

    await run_job(client, now)
    after = await tier_of(client, referrer)
    assert after is not None
    assert (after["tier"], after["qualifying_referrals"]) == ("gold", 2)
    assert datetime.fromisoformat(after["since"]) == bought_at + timedelta(days=WINDOW_DAYS)
    assert (after["next_tier"], after["next_tier_match"]) == ("platinum", "all")
    assert (after["referrals_to_next_tier"], after["visits_to_next_tier"]) == (3, 8)
    assert after["amount_to_next_tier"] == "4950.00"
    async with engine.connect() as conn:
        statuses = dict(
            (
                await conn.execute(
                    sa.select(referrals.c.referred_id, referrals.c.status).where(
                        referrals.c.referrer_id == referrer
                    )
                )
            ).all()
        )
    assert statuses == {kept: "qualified", also_kept: "qualified", returned: "disqualified"}

    async def announced() -> list[CloudEvent] | None:
        found = await events_for(stack.kafka, topics.TIERS, referrer)
        return [e for e in found if e.type == events.TIER_CHANGED] or None

    [changed] = await eventually(announced, within=WITHIN, what="the tier.changed")
    data = changed.data_as(events.TierChanged)
    assert (data.to_tier, data.reason) == ("gold", "qualifying_referrals")

    # Run again, later: nothing new is decided or announced.
    again = await run_job(client, now + timedelta(days=1))
    assert again["upgrades"] == 0
    assert (await tier_of(client, referrer) or {})["qualifying_referrals"] == 2


async def test_the_program_in_force_shows_each_tiers_routes(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/tiers", headers=READER)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["referral_return_window_days"] == WINDOW_DAYS
    assert body["tiers"][2] == {
        "name": "gold",
        "threshold": "2000.00",
        "referrals": 2,
        "visits": None,
        "match": "any",
    }
    assert body["tiers"][3]["match"] == "all"


def test_the_module_uses_its_own_program_file(settings: TiersSettings) -> None:
    assert Path(settings.program_file) != DEFAULT_PROGRAM_FILE


# Silver at 1 referral and gold at 3 (the live program: gold at 2, silver by spend or visits).
REPLAYED = Program(
    tiers=(
        TierDefinition("bronze", Decimal(0)),
        TierDefinition("silver", Decimal(500), referrals=1),
        TierDefinition("gold", Decimal(2000), referrals=3),
        TierDefinition("platinum", Decimal(5000), referrals=10, match=Match.ALL),
    ),
    referral_return_window_days=WINDOW_DAYS,
)


async def referrer_with(
    stack: Stack, client: httpx.AsyncClient, engine: AsyncEngine, friends: int, now: datetime
) -> str:
    """A member whose `friends` referred members each kept a first purchase past the window,
    once the job has counted them."""
    referrer = new_id("x")
    bought_at = now - timedelta(days=WINDOW_DAYS + 1)
    batch = [factories.enrolment(referrer, at=now - timedelta(days=40))]
    for _ in range(friends):
        friend = new_id("f")
        batch += [
            factories.enrolment(friend, at=bought_at - timedelta(days=1), referred_by=referrer),
            factories.purchase(friend, "20", at=bought_at),
        ]
    await send_all(stack, batch)

    async def pending() -> bool:
        async with engine.connect() as conn:
            known = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(referrals)
                .where(
                    referrals.c.referrer_id == referrer,
                    referrals.c.first_purchase_id.is_not(None),
                )
            )
        return known == friends and await tier_of(client, referrer) is not None

    await eventually(pending, within=WITHIN, what=f"{friends} referrals recorded")
    await run_job(client, now)
    return referrer


async def test_a_replay_counts_the_referrals_the_live_service_qualified(
    stack: Stack, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    now = datetime.now(UTC)
    two = await referrer_with(stack, client, engine, 2, now)
    one = await referrer_with(stack, client, engine, 1, now)
    assert [(await tier_of(client, c) or {}).get("tier") for c in (two, one)] == [
        "gold",
        "bronze",
    ]
    try:
        done = await Replay(
            engine=engine,
            bootstrap_servers=stack.kafka,
            program=REPLAYED,
            clock=SystemClock(),
            report=lambda _: None,
        ).run(fresh=True)
        assert done.switched
        after = [await tier_of(client, c) or {} for c in (two, one)]
        assert [(a["tier"], a["qualifying_referrals"]) for a in after] == [
            ("silver", 2),
            ("silver", 1),
        ]
        assert after[0]["referrals_to_next_tier"] == 1  # gold at 3 now

        async def announced(customer_id: str) -> list[events.TierChanged] | None:
            found = await events_for(stack.kafka, topics.TIERS, customer_id)
            changes = [
                events.TierChanged.model_validate(e.data)
                for e in found
                if e.type == events.TIER_CHANGED and e.data.get("reason") == PROGRAM_CHANGE
            ]
            return changes or None

        [down] = await eventually(lambda: announced(two), within=WITHIN, what="two's change")
        [up] = await eventually(lambda: announced(one), within=WITHIN, what="one's change")
        assert (down.from_tier, down.to_tier, down.direction) == ("gold", "silver", "down")
        assert (up.from_tier, up.to_tier, up.direction) == ("bronze", "silver", "up")
    finally:
        await forget_switched_programs(engine)
