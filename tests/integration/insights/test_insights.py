"""Insights on the test stack's Kafka and PostgreSQL: a member's features from their events,
as of any instant; the `segments` job's quintiles and memberships, each change published;
custom segments; an erased member forgotten."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from tests.integration.tiers.test_tiers import send_all
from tests.support import factories
from tests.support.kafka import events_for
from tests.support.polling import eventually
from tests.support.services import ADMIN, READER
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

WITHIN = 60.0


def new_member() -> str:
    return f"insights-it-{uuid.uuid4()}"


async def insights_of(
    client: httpx.AsyncClient, customer_id: str, as_of: datetime | None = None
) -> httpx.Response:
    params = {} if as_of is None else {"as_of": as_of.isoformat()}
    return await client.get(f"/v1/customers/{customer_id}/insights", params=params, headers=READER)


async def insights_reach(
    client: httpx.AsyncClient, customer_id: str, frequency: int
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        response = await insights_of(client, customer_id)
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body if body["rfm"]["frequency"] == frequency else None

    return await eventually(reached, within=WITHIN, what=f"{frequency} purchases of {customer_id}")


async def insights_until(
    client: httpx.AsyncClient, customer_id: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        response = await insights_of(client, customer_id)
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body if done(body) else None

    return await eventually(reached, within=WITHIN, what=f"the insights of {customer_id}")


async def run_segments(client: httpx.AsyncClient, as_of: datetime | None = None) -> dict[str, Any]:
    params = {} if as_of is None else {"as_of": as_of.isoformat()}
    response = await client.post("/v1/admin/jobs/segments", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    [summary] = response.json()["jobs"]
    found: dict[str, Any] = summary
    return found


async def segment_events(stack: Stack, customer_id: str) -> list[tuple[str, str]]:
    found: list[CloudEvent] = await events_for(stack.kafka, topics.SEGMENTS, customer_id)
    return [
        ("entered" if e.type == events.SEGMENT_ENTERED else "left", e.data["segment"])
        for e in found
    ]


async def test_a_members_story_becomes_features_as_of_any_instant(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    member, now = new_member(), datetime.now(UTC)
    p3 = factories.purchase(member, "60.00", at=now - timedelta(days=2), store_id="s1")
    await send_all(
        stack,
        [
            factories.enrolment(member, enrolled_at=now - timedelta(days=200), at=now),
            factories.purchase(member, "40.00", at=now - timedelta(days=150)),
            factories.purchase(member, "25.00", at=now - timedelta(days=20)),
            p3,
            factories.points_earned(
                member, 60, purchase_id=p3.data["purchase_id"], rule_ids=["campaign:x"], at=now
            ),
            factories.tier_change(member, "silver", at=now - timedelta(days=1)),
            factories.feedback(member, "nps", 10, at=now - timedelta(days=1)),
        ],
    )
    # The purchases, the points and the tier come on three topics, in no order between them.
    shown = await insights_until(
        client, member, lambda b: b["rfm"]["frequency"] == 3 and b["tier"] == "silver"
    )
    assert shown["rfm"]["recency_days"] == 2 and shown["rfm"]["monetary"] == "125.00"
    assert shown["tier"] == "silver" and "tier:silver" in shown["segments"]
    assert shown["lifecycle"] == "won_back"  # 130 days without a purchase, then one
    before = (await insights_of(client, member, now - timedelta(days=30))).json()
    assert (before["lifecycle"], before["rfm"]["frequency"], before["tier"]) == (
        "lapsed",
        1,
        "bronze",
    )


async def test_the_segments_job_scores_every_member_and_publishes_each_change(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    # A purchase alone (no enrolment, whose topic would race it): one evaluation, active.
    member, now = new_member(), datetime.now(UTC)
    await send_all(stack, [factories.purchase(member, "30.00", at=now - timedelta(days=1))])
    await insights_reach(client, member, frequency=1)
    await eventually(
        lambda: _has(stack, member, ("entered", "lifecycle:active")),
        within=WITHIN,
        what="the member entering lifecycle:active",
    )
    summary = await run_segments(client)
    assert summary["members"] >= 1 and summary["buyers"] >= 1
    shown = (await insights_of(client, member)).json()
    assert shown["quintiles_as_of"] is not None and shown["rfm"]["r"] is not None
    # Forty-five days later the member is at risk: the job's run as of then says so.
    await run_segments(client, now + timedelta(days=46))
    changes = await eventually(
        lambda: _has(stack, member, ("entered", "lifecycle:at_risk")),
        within=WITHIN,
        what="the member entering lifecycle:at_risk",
    )
    assert ("left", "lifecycle:active") in changes
    assert await _listed(client, "lifecycle:at_risk", member)
    # Back to now: the member is active again, and that change is the newest of all (each is
    # stamped when it was found), so a read model keeping the newest follows.
    await run_segments(client)
    found = await eventually(
        lambda: _last_change(stack, member, "lifecycle:active"),
        within=WITHIN,
        what="the member back in lifecycle:active",
    )
    stamps = [e.data["changed_at"] for e in await events_for(stack.kafka, topics.SEGMENTS, member)]
    assert found.data["changed_at"] == max(stamps)


async def _listed(client: httpx.AsyncClient, segment: str, member: str) -> bool:
    """Whether the member is on one of the segment's pages (other tests' members share it)."""
    cursor: str | None = None
    while True:
        params = {"limit": "500"} | ({"cursor": cursor} if cursor else {})
        response = await client.get(
            f"/v1/segments/{segment}/members", params=params, headers=READER
        )
        assert response.status_code == 200
        page = response.json()
        if any(item["customer_id"] == member for item in page["items"]):
            return True
        cursor = page["next_cursor"]
        if cursor is None:
            return False


async def _last_change(stack: Stack, member: str, segment: str) -> CloudEvent | None:
    mine = [
        e
        for e in await events_for(stack.kafka, topics.SEGMENTS, member)
        if e.data["segment"] == segment
    ]
    return mine[-1] if mine and mine[-1].type == events.SEGMENT_ENTERED and len(mine) > 1 else None


async def _has(stack: Stack, member: str, change: tuple[str, str]) -> list[tuple[str, str]] | None:
    found = await segment_events(stack, member)
    return found if change in found else None


async def test_a_custom_segment_is_filled_by_the_job_and_emptied_once_deleted(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    member, now = new_member(), datetime.now(UTC)
    name = f"big-{uuid.uuid4().hex[:10]}"
    await send_all(
        stack,
        [
            factories.enrolment(member, enrolled_at=now - timedelta(days=60), at=now),
            factories.purchase(member, "9999.00", at=now - timedelta(hours=1)),
        ],
    )
    await insights_reach(client, member, frequency=1)
    body = {"name": name, "description": "spent a lot", "criteria": {"min_monetary": "9000.00"}}
    created = await client.post(
        "/v1/segments", json=body, headers={**ADMIN, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert created.status_code == 201, created.text
    again = await client.post(
        "/v1/segments", json=body, headers={**ADMIN, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert again.status_code == 409
    await run_segments(client)
    # Members of other tests on the shared stack may have spent as much: this one is in.
    page = (await client.get(f"/v1/segments/{name}/members", headers=READER)).json()
    mine = [item for item in page["items"] if item["customer_id"] == member]
    assert [item["reasons"] for item in mine] == [["9999.00 spent"]]
    listed = (await client.get(f"/v1/segments/{name}", headers=READER)).json()
    assert listed["kind"] == "custom" and listed["members"] == len(page["items"])
    deleted = await client.delete(f"/v1/segments/{name}", headers=ADMIN)
    assert deleted.status_code == 204
    await run_segments(client)
    await eventually(
        lambda: _has(stack, member, ("left", name)), within=WITHIN, what=f"{member} leaving {name}"
    )


async def test_bad_segments_are_refused_with_a_problem(client: httpx.AsyncClient) -> None:
    for body in (
        {"name": "tier:gold", "criteria": {"min_r": 2}},  # a built-in's name
        {"name": "empty", "criteria": {}},
        {"name": "upside-down", "criteria": {"min_r": 4, "max_r": 2}},
        {"name": "unknown-field", "criteria": {"min_r": 2}, "colour": "red"},
    ):
        response = await client.post(
            "/v1/segments", json=body, headers={**ADMIN, "Idempotency-Key": str(uuid.uuid4())}
        )
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith("application/problem+json")
    unknown = await client.get("/v1/segments/no-such-segment/members", headers=READER)
    assert unknown.status_code == 404


async def test_an_erased_member_is_forgotten(stack: Stack, client: httpx.AsyncClient) -> None:
    member, now = new_member(), datetime.now(UTC)
    await send_all(stack, [factories.enrolment(member, at=now), factories.purchase(member, at=now)])
    await insights_reach(client, member, frequency=1)
    await send_all(stack, [factories.erasure(member), factories.purchase(member, at=now)])

    async def gone() -> bool:
        return (await insights_of(client, member)).status_code == 404

    await eventually(gone, within=WITHIN, what=f"{member} forgotten")
