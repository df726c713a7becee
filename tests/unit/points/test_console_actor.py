"""A staff adjustment made through the web console: points' real app and dependencies take the
console credential and the person its Fedelta-Actor header names, and hand the use case
`console:<that person>` as the actor it records (the recording itself, on PostgreSQL, is
tests/integration/points/test_points_adjustments.py's)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi.responses import JSONResponse

from services.points.api.schemas import AdjustmentIn, AdjustmentOut
from services.points.usecases import adjustments
from shared.clock import FixedClock
from shared.web.auth import ACTOR_HEADER, actor_of
from tests.support.points import NOW
from tests.support.service_apps import ADMIN_TOKEN, client_of, service_app
from tests.support.stack import sha256_hex

CONSOLE = "points-console-token-0123456789abcd"
URL = "/v1/customers/c-1/adjustments"


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the adjustments use case is handed: the database's part stands aside."""
    calls: list[dict[str, Any]] = []

    async def add_adjustment(
        engine: object,
        clock: object,
        program: object,
        call: object,
        customer_id: str,
        body: AdjustmentIn,
        *,
        actor: str,
    ) -> AdjustmentOut | JSONResponse:
        calls.append({"customer_id": customer_id, "points": body.points, "actor": actor})
        return AdjustmentOut(
            adjustment_id="a-1",
            points=body.points,
            reason=body.reason,
            actor=actor,
            available_after=body.points,
        )

    monkeypatch.setattr(adjustments, "add_adjustment", add_adjustment)
    return calls


@pytest.fixture
async def points() -> AsyncIterator[httpx.AsyncClient]:
    app = service_app("points", console_token_sha256=sha256_hex(CONSOLE))
    app.state.runtime = SimpleNamespace(engine=None, clock=FixedClock(NOW))
    async with client_of(app, 8081) as client:
        yield client


async def test_an_adjustment_through_the_console_records_the_person_as_actor(
    points: httpx.AsyncClient, recorded: list[dict[str, Any]]
) -> None:
    answer = await points.post(
        URL,
        json={"points": 25, "reason": "goodwill"},
        headers={"Authorization": f"Bearer {CONSOLE}", ACTOR_HEADER: "staff:alice"},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["actor"] == "console:staff:alice"
    assert recorded == [{"customer_id": "c-1", "points": 25, "actor": "console:staff:alice"}]


async def test_a_console_adjustment_naming_nobody_is_refused_before_the_use_case(
    points: httpx.AsyncClient, recorded: list[dict[str, Any]]
) -> None:
    answer = await points.post(
        URL,
        json={"points": 25, "reason": "goodwill"},
        headers={"Authorization": f"Bearer {CONSOLE}"},
    )
    assert answer.status_code == 400
    assert answer.json()["type"] == "urn:fedelta:problem:actor-required"
    assert recorded == []


async def test_an_admin_tokens_adjustment_keeps_its_own_actor_whatever_the_header(
    points: httpx.AsyncClient, recorded: list[dict[str, Any]]
) -> None:
    answer = await points.post(
        URL,
        json={"points": 25, "reason": "goodwill"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", ACTOR_HEADER: "staff:mallory"},
    )
    assert answer.status_code == 201, answer.text
    assert [c["actor"] for c in recorded] == [actor_of("admin", ADMIN_TOKEN)]
