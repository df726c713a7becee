"""The simulation's sender against a stand-in for ingest and points (httpx's MockTransport):
dependencies respected, lost answers retried with the same call, outcomes recorded."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx

from fedelta_cli.simulate import send_plan
from fedelta_cli.traffic import build_model, plan_traffic
from fedelta_client import StackClient
from tests.support.devenv import FAKE_DEV_ENV

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ENV = FAKE_DEV_ENV


async def test_refused_dependencies_skip_their_dependants_and_lost_answers_are_retried() -> None:
    plan = plan_traffic(customers=4, purchases=30, seed=3, run_tag="u", now=NOW)
    refused_customer = plan.customer_ids[0]
    bodies_by_path: dict[str, list[bytes]] = {}
    lost_once: set[str] = set()

    def stand_in(request: httpx.Request) -> httpx.Response:
        bodies_by_path.setdefault(request.url.path, []).append(request.content)
        body = json.loads(request.content)
        if request.url.path == "/v1/purchases" and body["purchase_id"] not in lost_once:
            lost_once.add(body["purchase_id"])
            raise httpx.ReadError("the answer was lost")
        if body.get("customer_id") == refused_customer and request.url.path == "/v1/customers":
            return httpx.Response(422, json={"detail": "no"})
        if body.get("currency") == "USD" or body.get("points", 0) > 1000:
            return httpx.Response(422, json={"detail": "no"})
        return httpx.Response(201 if request.url.host == "points" else 202, json={})

    async with httpx.AsyncClient(transport=httpx.MockTransport(stand_in)) as http:
        results = await send_plan(StackClient(ENV, http), plan, rate=10_000, concurrency=4)

    for call in plan.calls:
        outcome = results.outcomes[call.seq]
        if call.kind == "enrol":
            assert outcome == ("refused" if call.customer_id == refused_customer else "accepted")
        elif call.customer_id == refused_customer and call.after is not None:
            assert outcome == "skipped", call
        elif call.kind == "purchase":
            assert outcome == "accepted"
    # Every purchase that was sent went twice, byte for byte the same (same purchase id).
    sent = bodies_by_path["/v1/purchases"]
    assert len(lost_once) >= 1
    for purchase_id in lost_once:
        copies = [b for b in sent if json.loads(b)["purchase_id"] == purchase_id]
        assert len(copies) == 2 and copies[0] == copies[1]
    model = build_model(plan, results.outcomes)
    assert refused_customer not in model
    assert set(model) == set(plan.customer_ids[1:])
