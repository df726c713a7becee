"""A replay after a rule change, on the test stack, rebuilds an imported member's opening tier
with the rest of their history: the same tier from the same `since`, the same review, and
nothing announced when only the program around it changed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.tiers.domain.model import Program, TierDefinition
from services.tiers.domain.rebuild import PROGRAM_CHANGE
from services.tiers.usecases.replay import Replay
from shared.clock import SystemClock
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
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
    """Each test starts, and the modules after it go on, under the configured program."""
    await forget_switched_programs(engine)
    yield
    await forget_switched_programs(engine)


def imported(customer_id: str, tier: str, since: datetime, at: datetime) -> CloudEvent:
    payload = events.PointsImported(
        customer_id=customer_id,
        partner_id="demo",
        tier=tier,
        tier_since=since,
        imported_at=at,
    )
    return factories.ingest_event(payload, customer_id, at, "demo")


async def standing(client: httpx.AsyncClient, customer_id: str, spend: str) -> dict[str, Any]:
    async def shown() -> dict[str, Any] | None:
        response = await client.get(f"/v1/customers/{customer_id}/tier", headers=READER)
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body if Decimal(body["qualifying_spend"]) == Decimal(spend) else None

    return await eventually(shown, within=WITHIN, what=f"a spend of {spend}")


async def changes(stack: Stack, customer_id: str) -> list[events.TierChanged]:
    found = await events_for(stack.kafka, topics.TIERS, customer_id)
    return [e.data_as(events.TierChanged) for e in found if e.type == events.TIER_CHANGED]


async def test_a_replay_rebuilds_the_imported_tier_from_its_since(
    stack: Stack, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    kept, raised = f"tiers-import-replay-{uuid.uuid4()}", f"tiers-import-replay-{uuid.uuid4()}"
    kept_since, raised_since = now - timedelta(days=100), now - timedelta(days=30)
    bought_at = now - timedelta(days=1)
    for event in (
        factories.enrolment(kept, at=now - timedelta(days=2), imported=True),
        imported(kept, "gold", kept_since, now - timedelta(days=2)),
        # A marker, so that the live service has read the import when its spend shows.
        factories.purchase(kept, "1", at=now - timedelta(days=2), occurred_at=bought_at),
        factories.enrolment(raised, at=now - timedelta(days=2), imported=True),
        imported(raised, "silver", raised_since, now - timedelta(days=2)),
        factories.purchase(raised, "1500", at=now - timedelta(days=2), occurred_at=bought_at),
    ):
        assert event.subject is not None
        await publish(stack.kafka, event.topic, event.subject, event)
    before = await standing(client, kept, "1")
    assert (before["tier"], before["reason"]) == ("gold", "import")
    # Under the default program 1500 keeps the imported silver.
    assert (await standing(client, raised, "1500"))["tier"] == "silver"

    lines: list[str] = []
    replay = Replay(
        engine=engine,
        bootstrap_servers=stack.kafka,
        program=NEW_PROGRAM,
        clock=SystemClock(),
        report=lines.append,
    )
    result = await replay.run()
    assert result.switched, lines

    after = await standing(client, kept, "1")
    # Rebuilt with its import: still gold since the import's `since`, reviewed as before.
    assert (after["tier"], after["since"], after["review_at"]) == (
        "gold",
        before["since"],
        before["review_at"],
    )
    assert datetime.fromisoformat(after["since"]) == kept_since
    # Under the new program the purchase raises the imported silver to gold.
    up = await standing(client, raised, "1500")
    assert (up["tier"], datetime.fromisoformat(up["since"])) == ("gold", bought_at)

    async def announced() -> list[events.TierChanged] | None:
        found = [c for c in await changes(stack, raised) if c.reason == PROGRAM_CHANGE]
        return found or None

    [switched] = await eventually(announced, within=WITHIN, what="the switch's tier.changed")
    assert (switched.from_tier, switched.to_tier, switched.direction) == ("silver", "gold", "up")
    assert [c.reason for c in await changes(stack, kept)] == ["import"]
