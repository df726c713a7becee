"""End to end over HTTP: a customer's tier story as a POS and an operator live it, through
ingest, Kafka and the tiers service process; the jobs run on demand as of chosen instants,
and the replay after a rule change runs as the documented command."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fedelta_client import StackClient
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from shared.web.auth import actor_of
from tests.e2e.conftest import Pipeline
from tests.support.kafka import events_for
from tests.support.polling import eventually
from tests.support.stack import REPO

pytestmark = pytest.mark.e2e

WITHIN = 90.0


def new_customer() -> tuple[str, str]:
    customer = f"e2e-tiers-{uuid.uuid4().hex[:12]}"
    return customer, f"{customer}@example.com"


async def tier_when(pos: StackClient, customer_id: str, spend: str) -> dict[str, Any]:
    """The customer's tier once the tiers service has counted a qualifying spend of `spend`."""

    async def counted() -> dict[str, Any] | None:
        response = await pos.tier(customer_id)
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body if Decimal(body["qualifying_spend"]) == Decimal(spend) else None

    return await eventually(counted, within=WITHIN, what=f"a qualifying spend of {spend}")


async def run_job(pos: StackClient, name: str, as_of: datetime) -> dict[str, Any]:
    response = await pos.admin_post(
        f"{pos.env.tiers_url}/v1/admin/jobs/{name}", params={"as_of": as_of.isoformat()}
    )
    assert response.status_code == 200, response.text
    [summary] = response.json()["jobs"]
    assert isinstance(summary, dict)
    return summary


async def published(
    pipeline: Pipeline, customer_id: str, event_type: str, count: int
) -> list[CloudEvent]:
    async def found() -> list[CloudEvent] | None:
        on_topic = await events_for(pipeline.stack.kafka, topics.TIERS, customer_id)
        of_type = [e for e in on_topic if e.type == event_type]
        return of_type if len(of_type) >= count else None

    return await eventually(found, within=WITHIN, what=f"{count} {event_type} on Kafka")


async def history(pos: StackClient, customer_id: str) -> list[tuple[str, str, str, str | None]]:
    response = await pos.read(f"{pos.env.tiers_url}/v1/customers/{customer_id}/tier/history")
    assert response.status_code == 200, response.text
    return [
        (c["to_tier"], c["direction"], c["reason"], c["actor"]) for c in response.json()["changes"]
    ]


async def test_upgrade_then_a_refund_keeps_the_tier_until_a_warned_review_lowers_it(
    pipeline: Pipeline, pos: StackClient
) -> None:
    customer, address = new_customer()
    await pos.enrol(customer, address)
    purchase_id = f"p-{uuid.uuid4()}"
    await pos.purchase(customer, "2100.00", purchase_id)

    gold = await tier_when(pos, customer, "2100")
    assert gold["tier"] == "gold"  # bronze straight to gold: one purchase, two thresholds
    [up] = await published(pipeline, customer, events.TIER_CHANGED, 1)
    assert events.TierChanged.model_validate(up.data).to_tier == "gold"

    refund = await pos.post(
        f"/v1/purchases/{purchase_id}/refunds",
        {
            "refund_id": f"r-{uuid.uuid4()}",
            "amount": "1000.00",
            "occurred_at": datetime.now(UTC).isoformat(),
        },
    )
    assert refund.status_code == 202, refund.text
    refunded = await tier_when(pos, customer, "1100")
    # The spend supports only silver now, but a tier goes down at its review alone.
    assert (refunded["tier"], refunded["review_at"]) == ("gold", gold["review_at"])
    # By the review the 2100 has left the window and only the refund counts: -1000.
    assert Decimal(refunded["amount_to_keep_tier"]) == Decimal(3000)

    review_at = datetime.fromisoformat(gold["review_at"])
    warned = await run_job(pos, "warn-downgrades", review_at - timedelta(days=30))
    assert warned["warnings"] >= 1
    assert (await run_job(pos, "warn-downgrades", review_at - timedelta(days=30)))["warnings"] == 0
    [warning] = await published(pipeline, customer, events.TIER_DOWNGRADE_WARNING, 1)
    warned_of = events.TierDowngradeWarning.model_validate(warning.data)
    assert (warned_of.tier, warned_of.would_become) == ("gold", "silver")
    assert warned_of.review_at == review_at

    reviewed = await run_job(pos, "review-tiers", review_at)
    assert reviewed["downgrades"] >= 1
    assert (await pos.tier(customer)).json()["tier"] == "silver"
    changes = await published(pipeline, customer, events.TIER_CHANGED, 2)
    down = events.TierChanged.model_validate(changes[-1].data)
    assert (down.from_tier, down.to_tier, down.direction) == ("gold", "silver", "down")
    assert await history(pos, customer) == [
        ("silver", "down", "review", None),
        ("gold", "up", "qualifying_spend", None),
    ]


async def test_a_staff_override_sets_a_floor_until_its_date_and_is_announced(
    pipeline: Pipeline, pos: StackClient
) -> None:
    customer, address = new_customer()
    await pos.enrol(customer, address)
    await pos.purchase(customer, "100.00")
    assert (await tier_when(pos, customer, "100"))["tier"] == "bronze"

    until = (datetime.now(UTC) + timedelta(days=90)).replace(microsecond=0)
    response = await pos.admin_post(
        f"{pos.env.tiers_url}/v1/customers/{customer}/tier",
        {
            "tier": "platinum",
            "reason": "store opening guest",
            "until": until.isoformat(),
        },
    )
    assert response.status_code == 200, response.text
    shown = (await pos.tier(customer)).json()
    assert shown["tier"] == "platinum"
    assert datetime.fromisoformat(shown["review_at"]) == until
    # The actor is the admin credential the call carried (a body may not name one).
    actor = actor_of("admin", pos.env.token("tiers", "admin"))
    assert await history(pos, customer) == [("platinum", "up", "store opening guest", actor)]
    [changed] = await published(pipeline, customer, events.TIER_CHANGED, 1)
    announced = events.TierChanged.model_validate(changed.data)
    assert (announced.to_tier, announced.reason, announced.review_at) == (
        "platinum",
        "store opening guest",
        until,
    )


async def test_the_replay_command_applies_a_threshold_change_to_existing_customers(
    pipeline: Pipeline, pos: StackClient, tmp_path: Path
) -> None:
    lowered, unchanged = new_customer()[0], new_customer()[0]
    await pos.enrol(lowered, None)
    await pos.enrol(unchanged, None)
    await pos.purchase(lowered, "700.00")  # silver now; bronze once silver needs 1000
    await pos.purchase(unchanged, "300.00")  # bronze either way
    assert (await tier_when(pos, lowered, "700"))["tier"] == "silver"
    assert (await tier_when(pos, unchanged, "300"))["tier"] == "bronze"

    program = (REPO / "services" / "tiers" / "program.yaml").read_text()
    changed_program = tmp_path / "program.yaml"
    changed_program.write_text(program.replace('threshold: "500"', 'threshold: "1000"'))
    try:
        stdout = await replay(pipeline, changed_program)
        assert "offsets" in stdout and "switched" in stdout, stdout
        await the_lowered_threshold_is_applied(pipeline, pos, lowered, unchanged)
    finally:
        # The switched program stays in force in this stack's database: switch back, so the
        # other tests (and a rerun on the same stack) see the configured thresholds.
        # --fresh: a replay of the changed program that failed half-way is abandoned.
        await replay(pipeline, REPO / "services" / "tiers" / "program.yaml", "--fresh")


async def replay(pipeline: Pipeline, program: Path, *options: str) -> str:
    command = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.tiers",
        "replay",
        "--program",
        str(program),
        *options,
        cwd=REPO,
        env=os.environ | pipeline.stack.service_env("tiers", port=1),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(command.communicate(), timeout=300)
    assert command.returncode == 0, err.decode()
    return out.decode()


async def the_lowered_threshold_is_applied(
    pipeline: Pipeline, pos: StackClient, lowered: str, unchanged: str
) -> None:
    assert (await pos.tier(lowered)).json()["tier"] == "bronze"
    changes = await published(pipeline, lowered, events.TIER_CHANGED, 2)
    changed = events.TierChanged.model_validate(changes[-1].data)
    assert (changed.from_tier, changed.to_tier, changed.reason) == (
        "silver",
        "bronze",
        "program_change",
    )
    assert (await pos.tier(unchanged)).json()["tier"] == "bronze"
    assert await history(pos, unchanged) == []
