"""End to end over HTTP: knowing a member and targeting them. A program manager defines a
segment of big spenders in insights and a points campaign for it; the member's purchases
through ingest become insights' features, the `segments` job puts the member in the segment
(`fedelta.segment.entered` on Kafka), points' read model follows, and the member's next
purchase earns the campaign's triple points while the same purchase of a member outside the
segment earns the base."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fedelta_client import StackClient
from shared.messaging import events, topics
from tests.e2e.conftest import Pipeline
from tests.support.kafka import consumed_everywhere, events_for
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e

WITHIN = 90  # seconds: two cores shared with the whole stack


async def admin_created(pos: StackClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await pos.admin_post(url, body, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def insights_with(pos: StackClient, customer: str, monetary: str) -> dict[str, Any] | None:
    response = await pos.customer_insights(customer)
    if response.status_code != 200:
        return None
    body: dict[str, Any] = response.json()
    return body if body["rfm"]["monetary"] == monetary else None


async def earned_for(
    pos: StackClient, customer: str, purchase_id: str
) -> tuple[int, list[str]] | None:
    """The points the purchase earned and the rules that made them."""
    response = await pos.ledger(customer)
    if response.status_code != 200:
        return None
    found = [
        (e["points"], e["rule_ids"])
        for e in response.json()["entries"]
        if e["purchase_id"] == purchase_id
    ]
    return found[0] if found else None


async def test_a_big_spender_enters_a_segment_and_earns_its_campaign(
    pipeline: Pipeline, pos: StackClient
) -> None:
    run = uuid.uuid4().hex[:10]
    big, small, segment = f"e2e-big-{run}", f"e2e-small-{run}", f"big-spenders-{run}"
    now = datetime.now(UTC).replace(microsecond=0)
    await admin_created(
        pos,
        f"{pos.env.insights_url}/v1/segments",
        {"name": segment, "description": "spent 500 or more", "criteria": {"min_monetary": "500"}},
    )
    campaign = await admin_created(
        pos,
        f"{pos.env.points_url}/v1/campaigns",
        {
            "name": "Triple points for big spenders",
            "multiplier": "3",
            "segment": segment,
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(days=1)).isoformat(),
        },
    )
    try:
        await _story(pipeline, pos, big, small, segment, f"campaign:{campaign['id']}")
    finally:  # nobody else's purchases may earn it, nor be in the segment
        await pos.admin.request("DELETE", "points", f"/v1/campaigns/{campaign['id']}")
        await pos.admin.request("DELETE", "insights", f"/v1/segments/{segment}")


async def _members(pos: StackClient, segment: str) -> set[str]:
    """Every member of the segment, page by page."""
    found: set[str] = set()
    cursor: str | None = None
    while True:
        params = {"limit": "500"} | ({"cursor": cursor} if cursor else {})
        page = await pos.read(f"{pos.env.insights_url}/v1/segments/{segment}/members", params)
        assert page.status_code == 200, page.text
        found |= {m["customer_id"] for m in page.json()["items"]}
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return found


async def _story(
    pipeline: Pipeline, pos: StackClient, big: str, small: str, segment: str, rule: str
) -> None:
    for customer, total in ((big, "600.00"), (small, "20.00")):
        await pos.enrol(customer, f"{customer}@example.com")
        await pos.purchase(customer, total)
    shown = await eventually(
        lambda: insights_with(pos, big, "600.00"), within=WITHIN, what="the big spend in insights"
    )
    assert shown["lifecycle"] == "new" and shown["rfm"]["frequency"] == 1
    assert segment in shown["segments"]  # as of now, from the facts
    await eventually(
        lambda: insights_with(pos, small, "20.00"), within=WITHIN, what="the small spend"
    )

    job = await pos.admin_post(f"{pos.env.insights_url}/v1/admin/jobs/segments")
    assert job.status_code == 200, job.text
    entered = await eventually(
        lambda: _entered(pipeline, big, segment), within=WITHIN, what=f"{big} entering {segment}"
    )
    await eventually(
        lambda: consumed_everywhere(pipeline.stack.kafka, big, marker_event_id=entered),
        within=WITHIN,
        what="points and engagement reading the entry",
    )
    listed = await _members(pos, segment)  # other tests' spenders too
    assert big in listed and small not in listed

    for customer in (big, small):
        await pos.purchase(customer, "10.00", purchase_id=f"p-{customer}")
    boosted, boosted_by = await eventually(
        lambda: earned_for(pos, big, f"p-{big}"), within=WITHIN, what="the big spender's points"
    )
    base, base_by = await eventually(
        lambda: earned_for(pos, small, f"p-{small}"), within=WITHIN, what="the other's points"
    )
    # The big spender's tier (silver after 600) multiplies too: the campaign triples on top.
    assert rule in boosted_by and rule not in base_by
    assert boosted >= 3 * base


async def _entered(pipeline: Pipeline, customer: str, segment: str) -> str | None:
    for event in await events_for(pipeline.stack.kafka, topics.SEGMENTS, customer):
        if event.type == events.SEGMENT_ENTERED and event.data["segment"] == segment:
            return event.id
    return None
