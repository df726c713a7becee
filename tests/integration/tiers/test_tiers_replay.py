"""The replay after a rule change, on the test stack's Kafka and PostgreSQL, while the live
tiers service consumes and answers: only the customers whose tier differs under the new
program get a tier.changed, and a replay stopped half-way resumes where it stopped."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.tiers.adapters import tables
from services.tiers.adapters.program_file import program_json
from services.tiers.bootstrap import make_subscription
from services.tiers.domain.model import Program, TierDefinition
from services.tiers.domain.rebuild import PROGRAM_CHANGE
from services.tiers.programs import ProgramSource
from services.tiers.settings import TiersSettings
from services.tiers.usecases.replay import Replay, ReplayRefused
from shared.clock import SystemClock
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from shared.storage.db import create_engine
from tests.support import factories
from tests.support.kafka import events_for, publish
from tests.support.polling import eventually
from tests.support.services import READER
from tests.support.stack import Stack
from tests.support.tiers import forget_switched_programs

pytestmark = pytest.mark.integration

WITHIN = 90.0
# Silver is harder to reach and gold easier than under the default (500 and 2000).
NEW_PROGRAM = Program(
    tiers=(
        TierDefinition("bronze", Decimal(0)),
        TierDefinition("silver", Decimal(1000)),
        TierDefinition("gold", Decimal(1400)),
        TierDefinition("platinum", Decimal(5000)),
    )
)


@pytest.fixture(autouse=True)
async def configured_program_in_force(engine: AsyncEngine) -> AsyncIterator[None]:
    """Each test starts, and the modules after this one go on, under the configured program:
    a switch made here would otherwise stay in force for the live service."""
    await forget_switched_programs(engine)
    yield
    await forget_switched_programs(engine)


async def customer_buying(
    stack: Stack,
    client: httpx.AsyncClient,
    total: str,
    expected_tier: str,
    customer_id: str | None = None,
    spend: str | None = None,
) -> str:
    """A customer (new, enrolled yesterday, unless named) who buys `total`, once the live
    service shows the purchase (a qualifying spend of `spend`, `total` unless given) and the
    tier it gives under the default program."""
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    batch: list[CloudEvent] = []
    if customer_id is None:
        customer_id = f"tiers-replay-it-{uuid.uuid4()}"
        batch.append(factories.enrolment(customer_id, at=at))
    batch.append(factories.purchase(customer_id, total, at=at, occurred_at=at + timedelta(hours=1)))
    for event in batch:
        await publish(stack.kafka, event.topic, customer_id, event)

    async def shown() -> dict[str, Any] | None:
        response = await client.get(f"/v1/customers/{customer_id}/tier", headers=READER)
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body if Decimal(body["qualifying_spend"]) == Decimal(spend or total) else None

    body = await eventually(shown, within=WITHIN, what=f"a spend of {spend or total}")
    assert body["tier"] == expected_tier
    return customer_id


async def tier_of(client: httpx.AsyncClient, customer_id: str) -> str:
    response = await client.get(f"/v1/customers/{customer_id}/tier", headers=READER)
    assert response.status_code == 200, response.text
    tier: str = response.json()["tier"]
    return tier


async def relayed(engine: AsyncEngine) -> bool:
    """Whether the outbox has been published to the last row."""
    async with engine.connect() as conn:
        left = (
            await conn.execute(sa.select(sa.func.count()).select_from(tables.outbox))
        ).scalar_one()
    return left == 0


async def replay_changes(stack: Stack, customer_id: str) -> list[events.TierChanged]:
    found: list[CloudEvent] = await events_for(stack.kafka, topics.TIERS, customer_id)
    changed = [
        events.TierChanged.model_validate(e.data) for e in found if e.type == events.TIER_CHANGED
    ]
    return [c for c in changed if c.reason == PROGRAM_CHANGE]


async def test_a_threshold_change_announces_only_the_tiers_that_change_and_resumes(
    stack: Stack, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    down = await customer_buying(stack, client, "600", "silver")  # bronze under the new one
    up = await customer_buying(stack, client, "1500", "silver")  # gold under the new one
    same_bronze = await customer_buying(stack, client, "300", "bronze")
    same_gold = await customer_buying(stack, client, "2500", "gold")

    lines: list[str] = []
    replay = Replay(
        engine=engine,
        bootstrap_servers=stack.kafka,
        program=NEW_PROGRAM,
        clock=SystemClock(),
        report=lines.append,
        batch_max_records=5,
    )
    stopped = await replay.run(stop_after_polls=1)
    assert not stopped.switched
    assert stopped.events <= 5
    async with engine.connect() as conn:
        positions = (
            await conn.execute(
                sa.select(tables.tier_replay_offsets.c.next_offset).where(
                    tables.tier_replay_offsets.c.replay_id == stopped.replay_id
                )
            )
        ).scalars()
        assert sum(positions) > 0  # where it stopped is kept, with what it loaded

    # Resumed only with its own program: another one would mix two programs' tiers.
    with pytest.raises(ReplayRefused, match="--fresh"):
        await dataclasses.replace(replay, program=Program()).run()

    # The live service goes on meanwhile: what it applies before the switch is not lost.
    later_up = await customer_buying(stack, client, "1450", "silver")

    done = await dataclasses.replace(replay, batch_max_records=1000).run()
    assert done.switched
    assert done.replay_id == stopped.replay_id
    assert any(line.startswith(f"replay {done.replay_id}: resuming") for line in lines)
    assert any("offsets" in line for line in lines)

    assert [await tier_of(client, c) for c in (down, up, later_up, same_bronze, same_gold)] == [
        "bronze",
        "gold",
        "gold",
        "bronze",
        "gold",
    ]
    await eventually(lambda: relayed(engine), within=WITHIN, what="the outbox relayed")
    announced = {c: await replay_changes(stack, c) for c in (down, up, later_up)}
    assert [(e.from_tier, e.to_tier, e.direction) for e in announced[down]] == [
        ("silver", "bronze", "down")
    ]
    assert [(e.from_tier, e.to_tier, e.direction) for e in announced[up]] == [
        ("silver", "gold", "up")
    ]
    assert [(e.from_tier, e.to_tier) for e in announced[later_up]] == [("silver", "gold")]
    assert await replay_changes(stack, same_bronze) == []
    assert await replay_changes(stack, same_gold) == []

    history = await client.get(f"/v1/customers/{down}/tier/history", headers=READER)
    assert [(c["to_tier"], c["reason"]) for c in history.json()["changes"]] == [
        ("bronze", PROGRAM_CHANGE),
        ("silver", "qualifying_spend"),
    ]

    # The same program replayed again finds every tier as it is: nothing to announce.
    again = await dataclasses.replace(replay, batch_max_records=1000).run()
    assert again.switched and again.replay_id != done.replay_id
    assert again.changed == 0


@dataclasses.dataclass
class BuyingJustBeforeTheSwitch(Replay):
    """A replay during whose last moments, after its last load pass and before its switch,
    the live service applies one more purchase."""

    meanwhile: Callable[[], Awaitable[object]] | None = None

    async def _switch(self, *args: Any, **kwargs: Any) -> int:
        assert self.meanwhile is not None
        await self.meanwhile()
        return await super()._switch(*args, **kwargs)


async def test_what_the_live_service_applies_just_before_the_switch_is_in_the_switch(
    stack: Stack, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    customer = await customer_buying(stack, client, "600", "silver")

    async def buys_900_more() -> str:
        # 1500: silver under the default, gold under the new program.
        return await customer_buying(stack, client, "900", "silver", customer, spend="1500")

    replay = BuyingJustBeforeTheSwitch(
        engine=engine,
        bootstrap_servers=stack.kafka,
        program=NEW_PROGRAM,
        clock=SystemClock(),
        report=lambda _: None,
        meanwhile=buys_900_more,
    )
    assert (await replay.run()).switched

    # Without the 900 the new program would make the customer bronze (600 < 1000).
    assert await tier_of(client, customer) == "gold"
    await eventually(lambda: relayed(engine), within=WITHIN, what="the outbox relayed")
    assert [(e.from_tier, e.to_tier) for e in await replay_changes(stack, customer)] == [
        ("silver", "gold")
    ]


def thresholds(body: dict[str, Any]) -> dict[str, Decimal]:
    return {tier["name"]: Decimal(tier["threshold"]) for tier in body["tiers"]}


async def test_the_live_service_follows_a_switch_without_a_restart(
    stack: Stack, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    before = await client.get("/v1/tiers", headers=READER)
    assert before.status_code == 200, before.text
    assert thresholds(before.json())["silver"] == Decimal(500)
    customer = await customer_buying(stack, client, "600", "silver")

    replay = Replay(
        engine=engine,
        bootstrap_servers=stack.kafka,
        program=NEW_PROGRAM,
        clock=SystemClock(),
        report=lambda _: None,
    )
    assert (await replay.run()).switched
    async with engine.connect() as conn:
        switched = (
            await conn.execute(
                sa.select(tables.tier_replays.c.status, tables.tier_replays.c.generation)
            )
        ).one()
    assert switched.status == "switched" and switched.generation is not None

    # The same running service, never restarted: its API answers with the new program...
    after = await client.get("/v1/tiers", headers=READER)
    assert thresholds(after.json()) == {
        "bronze": Decimal(0),
        "silver": Decimal(1000),
        "gold": Decimal(1400),
        "platinum": Decimal(5000),
    }
    standing = (await client.get(f"/v1/customers/{customer}/tier", headers=READER)).json()
    assert (standing["tier"], standing["next_tier"]) == ("bronze", "silver")
    assert Decimal(standing["amount_to_next_tier"]) == Decimal(400)  # 1000 - 600, not 500's

    # ...and its consumer applies new purchases with the new thresholds: 700 was silver
    # under the old program and is bronze now; 1500 was silver and is gold now.
    await customer_buying(stack, client, "700", "bronze")
    await customer_buying(stack, client, "900", "gold", customer, spend="1500")
    await eventually(lambda: relayed(engine), within=WITHIN, what="the outbox relayed")
    found = await events_for(stack.kafka, topics.TIERS, customer)
    changed = [
        events.TierChanged.model_validate(e.data) for e in found if e.type == events.TIER_CHANGED
    ]
    assert [(c.from_tier, c.to_tier, c.reason) for c in changed] == [
        ("bronze", "silver", "qualifying_spend"),
        ("silver", "bronze", PROGRAM_CHANGE),
        ("bronze", "gold", "qualifying_spend"),
    ]


async def waiting_on_customers(engine: AsyncEngine, pid: int) -> bool:
    async with engine.connect() as conn:
        waiting = await conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_locks "
                "WHERE NOT granted AND relation = 'customers'::regclass AND pid = :pid"
            ),
            {"pid": pid},
        )
        return bool(waiting.scalar_one())


async def test_a_batch_held_up_by_a_switch_applies_the_switched_program(
    engine: AsyncEngine, settings: TiersSettings
) -> None:
    """The consumer's batch handler, begun while a switch holds its lock, applies what the
    switch made live, not the program it was following when it began."""
    customer = f"tiers-replay-it-{uuid.uuid4()}"
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    # 700: silver under the default program, bronze under the new.
    batch = [factories.purchase(customer, "700", at=at)]
    programs = ProgramSource(Program())
    clock = SystemClock()
    handle = make_subscription(programs, clock).handle
    async with engine.connect() as conn:
        assert await programs.current(conn) == Program()  # following the configured one
        await conn.rollback()

    switch_engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with switch_engine.connect() as switching, engine.connect() as consuming:
            switch = await switching.begin()
            await switching.execute(
                sa.text("LOCK TABLE customers, qualifying_activity IN EXCLUSIVE MODE")
            )
            await switching.execute(
                tables.tier_replays.insert().values(
                    replay_id=f"it-{uuid.uuid4().hex[:8]}",
                    program=program_json(NEW_PROGRAM),
                    status="switched",
                    started_at=clock.now(),
                    events=0,
                    skipped=0,
                    switched_at=clock.now(),
                    changed=0,
                    generation=sa.func.nextval("tier_program_generation"),
                )
            )
            consumed = await consuming.begin()
            pid = (await consuming.execute(sa.select(sa.func.pg_backend_pid()))).scalar_one()

            async def apply() -> None:
                await handle(consuming, batch)

            applying = asyncio.create_task(apply())
            await eventually(
                lambda: waiting_on_customers(engine, pid), within=WITHIN, what="the batch waiting"
            )
            assert not applying.done()
            await switch.commit()
            await asyncio.wait_for(applying, timeout=WITHIN)
            tier = (
                await consuming.execute(
                    sa.select(tables.customers.c.tier).where(
                        tables.customers.c.customer_id == customer
                    )
                )
            ).scalar_one()
            await consumed.rollback()  # nothing left behind for the live relay
    finally:
        await switch_engine.dispose()
    assert tier == "bronze"
