"""Till calls through ingest, relayed to a stand-in points on a real local port
(tests/support/http_stub.py): the gateway against a refused port, a server that never answers,
one that drops the connection, a full pool; then signed calls through the ingest app (its
real database for the partner): what is relayed as it is, what becomes ingest's own problem,
and that ingest keeps no answer for these calls; then, on two ingest instances sharing one
database, that a signed redemption or hold is never relayed again under another key."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.ingest.adapters.points_gateway import HttpPointsGateway
from services.ingest.adapters.repositories.till_signatures import SqlTillSignatures
from services.ingest.adapters.tables import till_signatures
from services.ingest.api.app import create_app
from services.ingest.ports import PointsOutcomeUnknown, PointsUnreachable, TillCall
from services.ingest.settings import IngestSettings
from tests.integration.ingest.support import PROBLEM_JSON, Pos, unique
from tests.support.http_stub import HttpStub, closed_port, http_stub
from tests.support.polling import eventually
from tests.support.services import ADMIN, running, settings_for
from tests.support.stack import Stack

TOKEN = "till-token-for-the-test-0123456789"
BALANCE = {"customer_id": "c", "available": 120, "pending": 0, "debt": 0}


def gateway(url: str, **limits: float) -> HttpPointsGateway:
    return HttpPointsGateway(
        url,
        TOKEN,
        connect_timeout_seconds=limits.get("connect", 1.0),
        timeout_seconds=limits.get("timeout", 0.5),
        connections=int(limits.get("connections", 4)),
    )


@pytest.fixture
async def stub() -> AsyncIterator[HttpStub]:
    async with http_stub() as server:
        yield server


# --- the gateway against real sockets -------------------------------------------------------


async def test_an_answer_comes_back_as_it_was_sent(stub: HttpStub) -> None:
    stub.answer(201, b'{"hold_id": "h-1"}', headers={"Idempotent-Replayed": "true"})
    points = gateway(stub.url)
    call = TillCall(
        "POST",
        "/v1/customers/c-1/holds",
        "bar-1",
        store_id="s-1",
        idempotency_key="k-1",
        body={"points": 3, "reward": "tea"},
    )
    answer = await points.call(call)
    await points.aclose()
    assert (answer.status, answer.body, answer.replayed) == (201, b'{"hold_id": "h-1"}', "true")
    (received,) = stub.received
    assert (received.method, received.target) == ("POST", "/v1/customers/c-1/holds")
    assert received.headers["authorization"] == f"Bearer {TOKEN}"
    assert received.headers["fedelta-partner-id"] == "bar-1"
    assert received.headers["fedelta-store-id"] == "s-1"
    assert received.headers["idempotency-key"] == "k-1"
    assert json.loads(received.body) == {"points": 3, "reward": "tea"}


async def test_a_refused_connection_is_unreachable_at_once() -> None:
    points = gateway(f"http://127.0.0.1:{closed_port()}")
    started = time.monotonic()
    with pytest.raises(PointsUnreachable, match="ConnectError"):
        await points.call(TillCall("POST", "/v1/customers/c/redemptions", "p", body={}))
    assert time.monotonic() - started < 1.0
    await points.aclose()


async def test_an_unknown_host_is_unreachable() -> None:
    points = gateway("http://points.invalid:8081", connect=2.0)
    with pytest.raises(PointsUnreachable):
        await points.call(TillCall("GET", "/v1/customers/c/balance", "p"))
    await points.aclose()


async def test_a_server_that_never_answers_leaves_the_outcome_unknown_within_the_timeout(
    stub: HttpStub,
) -> None:
    stub.mode = "hang"
    points = gateway(stub.url, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(PointsOutcomeUnknown, match="ReadTimeout"):
        await points.call(TillCall("POST", "/v1/holds/h-1/capture", "p"))
    assert 0.4 < time.monotonic() - started < 3.0
    assert len(stub.received) == 1  # it was sent
    await points.aclose()


async def test_a_connection_dropped_before_the_answer_leaves_the_outcome_unknown(
    stub: HttpStub,
) -> None:
    stub.mode = "drop"
    points = gateway(stub.url)
    with pytest.raises(PointsOutcomeUnknown):
        await points.call(TillCall("POST", "/v1/holds/h-1/void", "p"))
    await points.aclose()


async def test_calls_beyond_the_pool_wait_then_fail_without_being_sent(stub: HttpStub) -> None:
    stub.mode = "hang"
    points = gateway(stub.url, connect=0.3, timeout=5.0, connections=1)
    first = asyncio.create_task(points.call(TillCall("POST", "/v1/holds/h-1/capture", "p")))

    async def sent() -> bool:
        return bool(stub.received)

    await eventually(sent, within=5.0, interval=0.01, what="the first call to arrive")
    with pytest.raises(PointsUnreachable, match="PoolTimeout"):
        await points.call(TillCall("POST", "/v1/holds/h-2/capture", "p"))
    assert len(stub.received) == 1  # the second never left
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    await points.aclose()


# --- through the ingest app ---------------------------------------------------------------


@pytest.fixture(scope="module")
async def points_stub() -> AsyncIterator[HttpStub]:
    async with http_stub() as server:
        yield server


async def _app_with(
    stack: Stack, *, till_token: bool = True, **overrides: str
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    stack.migrate("ingest")
    settings = settings_for(IngestSettings, stack, "ingest", run_workers="false", **overrides)
    if not till_token:
        settings = settings.model_copy(update={"points_token": None})
    async with running(create_app, settings) as (_, client):
        response = await client.post(
            "/v1/admin/partners",
            json={"name": "Till Bar", "partner_id": unique("p")},
            headers=ADMIN,
        )
        assert response.status_code == 201, response.text
        yield client, response.json()


@pytest.fixture(scope="module")
async def till(stack: Stack, points_stub: HttpStub) -> AsyncIterator[Pos]:
    """A POS on an ingest whose points is the stub."""
    async for client, partner in _app_with(
        stack, points_url=points_stub.url, points_token=TOKEN, points_timeout_seconds="0.5"
    ):
        yield Pos(client, partner["partner_id"], partner["api_key"], partner["signing_secret"])


def answered(stub: HttpStub, status: int, document: object, **headers: str) -> None:
    content_type = PROBLEM_JSON if status >= 400 else "application/json"
    stub.answer(status, json.dumps(document).encode(), content_type=content_type, headers=headers)


async def test_a_signed_balance_is_relayed_with_the_partner(
    till: Pos, points_stub: HttpStub
) -> None:
    answered(points_stub, 200, BALANCE)
    points_stub.received.clear()
    response = await till.send("GET", "/v1/customers/c-1/balance", raw=b"")
    assert response.status_code == 200, response.text
    assert response.json() == BALANCE
    (received,) = points_stub.received
    assert (received.method, received.target) == ("GET", "/v1/customers/c-1/balance")
    assert received.headers["fedelta-partner-id"] == till.partner_id
    assert received.headers["authorization"] == f"Bearer {TOKEN}"
    assert "fedelta-store-id" not in received.headers


async def test_unsigned_or_wrongly_signed_calls_never_reach_points(
    till: Pos, points_stub: HttpStub
) -> None:
    points_stub.received.clear()
    unsigned = await till.client.get(
        "/v1/customers/c-1/balance", headers={"Authorization": f"Bearer {till.api_key}"}
    )
    forged = await till.send(
        "POST",
        "/v1/customers/c-1/redemptions",
        {"points": 5, "reward": "x"},
        signed_body=b'{"points": 1, "reward": "x"}',
        headers={"Idempotency-Key": unique("k")},
    )
    assert (unsigned.status_code, forged.status_code) == (401, 401)
    assert points_stub.received == []


async def test_a_redemption_is_relayed_with_its_key_store_and_answer(
    till: Pos, points_stub: HttpStub
) -> None:
    answered(
        points_stub, 201, {"redemption_id": "r-1", "points": 50}, **{"Idempotent-Replayed": "true"}
    )
    points_stub.received.clear()
    key = unique("k")
    response = await till.send(
        "POST",
        "/v1/customers/c-1/redemptions",
        {"points": 50, "reward": "coffee", "store_id": "s-9"},
        headers={"Idempotency-Key": key},
    )
    assert response.status_code == 201, response.text
    assert response.json() == {"redemption_id": "r-1", "points": 50}
    assert response.headers["idempotent-replayed"] == "true"
    (received,) = points_stub.received
    assert received.headers["idempotency-key"] == key
    assert received.headers["fedelta-store-id"] == "s-9"
    assert json.loads(received.body) == {"points": 50, "reward": "coffee"}


async def test_a_redemption_or_hold_without_a_key_is_428_and_bad_bodies_422(
    till: Pos, points_stub: HttpStub
) -> None:
    points_stub.received.clear()
    no_key = await till.send("POST", "/v1/customers/c-1/holds", {"points": 5, "reward": "x"})
    assert no_key.status_code == 428
    assert no_key.json()["type"] == "urn:fedelta:problem:idempotency-key-required"
    key = {"Idempotency-Key": unique("k")}
    for body in ({"points": "5", "reward": "x"}, {"reward_id": "r", "points": 5, "reward": "x"}):
        refused = await till.send("POST", "/v1/customers/c-1/redemptions", body, headers=key)
        assert refused.status_code == 422, refused.text
    bad_code = await till.send("POST", "/v1/coupons/a%2Fb/redeem", {})
    assert bad_code.status_code in (404, 405, 422)
    assert (await till.send("POST", "/v1/coupons/abc/redeem", {})).status_code == 422
    assert points_stub.received == []


async def test_points_refusals_come_back_as_they_are(till: Pos, points_stub: HttpStub) -> None:
    used = {"type": "urn:fedelta:problem:coupon-used", "title": "Conflict", "status": 409}
    answered(points_stub, 409, used)
    response = await till.send("POST", "/v1/coupons/K7QM-4XPD-9TRB/redeem", {"store_id": "s-1"})
    assert (response.status_code, response.headers["content-type"]) == (409, PROBLEM_JSON)
    assert response.json() == used
    assert json.loads(points_stub.received[-1].body) == {"store_id": "s-1"}


@pytest.mark.parametrize(
    ("status", "content_type", "body", "expected", "slug"),
    [
        (500, PROBLEM_JSON, b'{"status": 500}', 502, "points-failed"),
        (503, PROBLEM_JSON, b'{"status": 503}', 503, "points-unavailable"),
        (200, "text/html", b"<html>proxy error</html>", 502, "points-bad-answer"),
        (200, "application/json", b"{not json", 502, "points-bad-answer"),
        (
            401,
            PROBLEM_JSON,
            b'{"type": "urn:fedelta:problem:unauthorized"}',
            502,
            "points-misconfigured",
        ),
    ],
)
async def test_what_a_till_cannot_act_on_becomes_ingests_problem(
    till: Pos,
    points_stub: HttpStub,
    status: int,
    content_type: str,
    body: bytes,
    expected: int,
    slug: str,
) -> None:
    points_stub.answer(status, body, content_type=content_type, headers={"Retry-After": "5"})
    response = await till.send("POST", "/v1/holds/h-1/capture", raw=b"")
    assert response.status_code == expected, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == f"urn:fedelta:problem:{slug}"
    if status == 503:
        assert response.headers["retry-after"] == "5"


async def test_points_hanging_is_an_unknown_outcome_and_ingest_keeps_nothing(
    till: Pos, points_stub: HttpStub, db: AsyncEngine
) -> None:
    points_stub.mode = "hang"
    key = unique("k")
    try:
        response = await till.send(
            "POST",
            "/v1/customers/c-1/redemptions",
            {"reward_id": "rw-1"},
            headers={"Idempotency-Key": key},
        )
    finally:
        points_stub.mode = "answer"
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "urn:fedelta:problem:points-outcome-unknown"
    assert "same Idempotency-Key" in response.json()["detail"]
    assert response.headers["retry-after"] == "1"
    async with db.connect() as conn:
        kept = await conn.scalar(
            sa.text("SELECT count(*) FROM idempotency_keys WHERE key = :key"), {"key": key}
        )
    assert kept == 0


@pytest.fixture(scope="module")
async def till_without_points(stack: Stack) -> AsyncIterator[Pos]:
    """A POS on an ingest whose points is a port nothing listens on."""
    async for client, partner in _app_with(
        stack, points_url=f"http://127.0.0.1:{closed_port()}", points_token=TOKEN
    ):
        yield Pos(client, partner["partner_id"], partner["api_key"], partner["signing_secret"])


async def test_points_away_is_a_503_with_retry_after_and_nothing_done(
    till_without_points: Pos, db: AsyncEngine
) -> None:
    key = unique("k")
    response = await till_without_points.send(
        "POST",
        "/v1/customers/c-1/holds",
        {"points": 5, "reward": "x"},
        headers={"Idempotency-Key": key},
    )
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == "urn:fedelta:problem:points-unavailable"
    assert response.headers["retry-after"] == "1"
    balance = await till_without_points.send("GET", "/v1/customers/c-1/balance", raw=b"")
    assert balance.status_code == 503
    async with db.connect() as conn:
        kept = await conn.scalar(
            sa.text("SELECT count(*) FROM idempotency_keys WHERE key = :key"), {"key": key}
        )
    assert kept == 0


async def test_without_a_till_token_the_till_calls_say_so(stack: Stack) -> None:
    async for client, partner in _app_with(stack, till_token=False):
        pos = Pos(client, partner["partner_id"], partner["api_key"], partner["signing_secret"])
        response = await pos.send("GET", "/v1/customers/c-1/balance", raw=b"")
        assert response.status_code == 503
        assert response.json()["type"] == "urn:fedelta:problem:till-not-configured"


async def test_the_till_routes_are_documented_as_signed_partner_calls(till: Pos) -> None:
    document = (await till.client.get("/openapi.json")).json()
    paths = document["paths"]
    for path, method in [
        ("/v1/customers/{customer_id}/balance", "get"),
        ("/v1/customers/{customer_id}/rewards", "get"),
        ("/v1/customers/{customer_id}/redemptions", "post"),
        ("/v1/customers/{customer_id}/holds", "post"),
        ("/v1/holds/{hold_id}/capture", "post"),
        ("/v1/holds/{hold_id}/void", "post"),
        ("/v1/coupons/{code}/redeem", "post"),
    ]:
        operation = paths[path][method]
        assert operation["security"] == [{"partnerApiKey": [], "partnerSignature": []}], path
        assert {"502", "503"} <= set(operation["responses"]), path
    for path in ("/v1/customers/{customer_id}/redemptions", "/v1/customers/{customer_id}/holds"):
        assert "428" in paths[path]["post"]["responses"], path
    assert "410" in paths["/v1/coupons/{code}/redeem"]["post"]["responses"]
    (code,) = [
        p for p in paths["/v1/coupons/{code}/redeem"]["post"]["parameters"] if p["name"] == "code"
    ]
    assert code["schema"]["maxLength"] == 64


# --- no replay of a signed redemption or hold under another key ----------------------------


@pytest.fixture(scope="module")
async def instances(stack: Stack, points_stub: HttpStub) -> AsyncIterator[tuple[Pos, Pos, FastAPI]]:
    """Two ingest instances on one database, whose points is the stub, and one partner's till
    on each (the second's app too, to take its database away)."""
    stack.migrate("ingest")
    settings = settings_for(
        IngestSettings,
        stack,
        "ingest",
        run_workers="false",
        points_url=points_stub.url,
        points_token=TOKEN,
        points_timeout_seconds="0.5",
    )
    async with (
        running(create_app, settings) as (_, first),
        running(create_app, settings) as (second_app, second),
    ):
        response = await first.post(
            "/v1/admin/partners",
            json={"name": "Two tills", "partner_id": unique("p")},
            headers=ADMIN,
        )
        assert response.status_code == 201, response.text
        partner = response.json()
        credentials = (partner["partner_id"], partner["api_key"], partner["signing_secret"])
        yield Pos(first, *credentials), Pos(second, *credentials), second_app


SPENDS = [
    ("redemptions", {"points": 50, "reward": "coffee", "store_id": "s-1"}),
    ("holds", {"points": 10, "reward": "cake"}),
]


async def kept_keys(db: AsyncEngine, partner_id: str, keys: list[str]) -> list[str]:
    """Those of `keys` the partner's remembered signatures came with, once per signature."""
    async with db.connect() as conn:
        rows = await conn.scalars(
            sa.select(till_signatures.c.idempotency_key)
            .where(
                till_signatures.c.partner_id == partner_id,
                till_signatures.c.idempotency_key.in_(keys),
            )
            .order_by(till_signatures.c.signed_at)
        )
        return [str(key) for key in rows]


@pytest.mark.parametrize(("resource", "body"), SPENDS)
async def test_a_signed_spend_resent_under_a_new_key_is_refused_before_points(
    instances: tuple[Pos, Pos, FastAPI],
    points_stub: HttpStub,
    db: AsyncEngine,
    resource: str,
    body: dict[str, object],
) -> None:
    first, second, _ = instances
    answered(points_stub, 201, {"id": "r-1"})
    points_stub.received.clear()
    path = f"/v1/customers/{unique('c')}/{resource}"
    signed_at = int(time.time())

    async def send(pos: Pos, key: str, timestamp: int = signed_at) -> httpx.Response:
        return await pos.send(
            "POST", path, body, timestamp=timestamp, headers={"Idempotency-Key": key}
        )

    key, other_keys = unique("k"), [unique("k"), unique("k")]
    assert (await send(first, key)).status_code == 201
    # The till resends the identical request after a lost answer, to another instance.
    assert (await send(second, key)).status_code == 201
    for pos, other_key in zip((second, first), other_keys, strict=True):
        replayed = await send(pos, other_key)  # the captured request under the attacker's key
        assert replayed.status_code == 409, replayed.text
        assert replayed.headers["content-type"] == PROBLEM_JSON
        problem = replayed.json()
        assert problem["type"] == "urn:fedelta:problem:signature-replayed"
        assert "sign a new request" in problem["detail"]
    # A newly signed request with the same key goes on: points replays by key.
    assert (await send(first, key, signed_at + 1)).status_code == 201
    assert [received.headers["idempotency-key"] for received in points_stub.received] == [key] * 3
    assert await kept_keys(db, first.partner_id, [key, *other_keys]) == [key, key]


async def test_concurrent_replays_under_other_keys_let_one_call_through(
    instances: tuple[Pos, Pos, FastAPI], points_stub: HttpStub
) -> None:
    first, second, _ = instances
    answered(points_stub, 201, {"redemption_id": "r-1"})
    points_stub.received.clear()
    path = f"/v1/customers/{unique('c')}/redemptions"
    signed_at = int(time.time())
    responses = await asyncio.gather(
        *(
            pos.send(
                "POST",
                path,
                {"reward_id": "rw-1"},
                timestamp=signed_at,
                headers={"Idempotency-Key": unique("k")},
            )
            for pos in (first, second) * 4
        )
    )
    assert sorted(response.status_code for response in responses) == [201] + [409] * 7
    assert len(points_stub.received) == 1


async def test_a_signed_spend_while_the_database_is_away_is_503_and_reaches_no_one(
    instances: tuple[Pos, Pos, FastAPI], points_stub: HttpStub
) -> None:
    _, second, app = instances
    await second.send("GET", "/v1/customers/c-1/balance", raw=b"")  # its partner, cached
    points_stub.received.clear()
    away = create_async_engine(f"postgresql+asyncpg://u:p@127.0.0.1:{closed_port()}/ingest")
    kept, app.state.till_signatures = app.state.till_signatures, SqlTillSignatures(away)
    try:
        response = await second.send(
            "POST",
            f"/v1/customers/{unique('c')}/holds",
            {"points": 5, "reward": "x"},
            headers={"Idempotency-Key": unique("k")},
        )
    finally:
        app.state.till_signatures = kept
        await away.dispose()
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "urn:fedelta:problem:database-unavailable"
    assert "retry-after" in response.headers
    assert points_stub.received == []


async def test_signatures_are_forgotten_once_no_instance_could_accept_them(
    instances: tuple[Pos, Pos, FastAPI], db: AsyncEngine
) -> None:
    first, _, _ = instances
    # Long ago, so that no other test's signature is old enough to be purged by this run.
    base = datetime(2001, 1, 1, tzinfo=UTC)
    old, recent = unique("old"), unique("recent")
    async with db.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO till_signatures (partner_id, signature_digest, idempotency_key, "
                "signed_at) VALUES (:partner, :old, 'k', :old_at), (:partner, :recent, 'k', "
                ":recent_at)"
            ),
            {
                "partner": first.partner_id,
                "old": old,
                "recent": recent,
                "old_at": base,
                "recent_at": base + timedelta(seconds=90),
            },
        )
    # The default tolerance is 300 s and the margin 60 s: as of 00:07:00, a signature of
    # 00:00:00 could not be accepted any more (cut-off 00:01:00); one of 00:01:30 could.
    response = await first.client.post(
        "/v1/admin/jobs/purge-till-signatures",
        params={"as_of": (base + timedelta(minutes=7)).isoformat()},
        headers=ADMIN,
    )
    assert response.status_code == 200, response.text
    assert response.json()["jobs"][0]["deleted"] >= 1
    async with db.connect() as conn:
        left = await conn.scalars(
            sa.text(
                "SELECT signature_digest FROM till_signatures WHERE partner_id = :partner "
                "AND signature_digest IN (:old, :recent)"
            ),
            {"partner": first.partner_id, "old": old, "recent": recent},
        )
        assert list(left) == [recent]


async def test_the_replay_refusal_is_documented(till: Pos) -> None:
    paths = (await till.client.get("/openapi.json")).json()["paths"]
    for path in ("/v1/customers/{customer_id}/redemptions", "/v1/customers/{customer_id}/holds"):
        conflict = paths[path]["post"]["responses"]["409"]
        assert "signature-replayed" in conflict["description"], path
        assert "application/problem+json" in conflict["content"], path


async def test_other_requests_signed_the_same_second_are_other_signatures(
    instances: tuple[Pos, Pos, FastAPI], points_stub: HttpStub
) -> None:
    first, _, _ = instances
    answered(points_stub, 201, {"id": "r-1"})
    points_stub.received.clear()
    customer, signed_at = unique("c"), int(time.time())
    calls = [
        (f"/v1/customers/{customer}/redemptions", {"points": 5, "reward": "tea"}),
        (f"/v1/customers/{customer}/redemptions", {"points": 6, "reward": "tea"}),
        (f"/v1/customers/{customer}/holds", {"points": 5, "reward": "tea"}),
        (f"/v1/customers/{unique('c')}/redemptions", {"points": 5, "reward": "tea"}),
        (f"/v1/customers/{customer}/redemptions?store=s-2", {"points": 5, "reward": "tea"}),
    ]
    for path, body in calls:
        response = await first.send(
            "POST", path, body, timestamp=signed_at, headers={"Idempotency-Key": unique("k")}
        )
        assert response.status_code == 201, (path, body, response.text)
    assert len(points_stub.received) == len(calls)
