"""The till scope: a bearer token ingest holds to act for a partner's till. It names its
partner (required, bounded) and store (optional), opens only the till's routes of points, and
its idempotency keys are scoped by the partner too."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from services.points.api.app import create_app
from services.points.domain.holds import Hold, lapse_all
from services.points.domain.lots import Allocation
from services.points.settings import PointsSettings
from shared.web.auth import credential_of
from shared.web.deps import (
    scopes_taken,
)
from shared.web.idempotency import call_of
from tests.support.service_apps import credential_probe
from tests.support.stack import sha256_hex

ADMIN = "admin-token-0123456789abcdef"
READ = "read-token-0123456789abcdef"
TILL = "till-token-0123456789abcdef"

# What the till scope opens in points (common18.md): nothing else.
TILL_ROUTES = {
    ("GET", "/v1/customers/{customer_id}/balance"),
    ("GET", "/v1/customers/{customer_id}/rewards"),
    ("POST", "/v1/customers/{customer_id}/redemptions"),
    ("POST", "/v1/customers/{customer_id}/holds"),
    ("POST", "/v1/holds/{hold_id}/capture"),
    ("POST", "/v1/holds/{hold_id}/void"),
    ("POST", "/v1/coupons/{code}/redeem"),
}


def settings(till: str | None = TILL) -> PointsSettings:
    return PointsSettings(
        database_url="postgresql+asyncpg://u:p@localhost:5432/points",
        kafka_bootstrap_servers="localhost:9092",
        admin_token_sha256=sha256_hex(ADMIN),
        read_token_sha256=sha256_hex(READ),
        till_token_sha256=None if till is None else sha256_hex(till),
    )


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def test_the_till_token_grants_the_till_scope_only_when_configured() -> None:
    hashes = settings().token_hashes()
    till = (sha256_hex(TILL),)

    def token_scope(presented: str, till_hashes: tuple[str, ...] = ()) -> str | None:
        credential = credential_of(presented, hashes, till_hashes)
        return None if credential is None else credential.scope

    assert token_scope(TILL, till) == "till"
    assert token_scope(ADMIN, till) == "admin"
    assert token_scope(READ, till) == "read"
    assert token_scope(TILL, ()) is None
    assert token_scope(TILL) is None


def _scope_checks(dependant: Dependant) -> Iterator[frozenset[str]]:
    for sub in dependant.dependencies:
        if (taken := scopes_taken(sub.call)) is not None:
            yield taken
        yield from _scope_checks(sub)


def _api_routes(routes: Iterable[object]) -> Iterator[APIRoute]:
    """Every API route, within the routers the app included too."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(included.routes)


def test_the_till_token_opens_only_the_tills_routes_of_points() -> None:
    app = create_app(settings())
    opened: set[tuple[str, str]] = set()
    routes = list(_api_routes(app.routes))
    assert len(routes) > 20
    for route in routes:
        if not route.path.startswith("/v1/"):
            continue
        checks = list(_scope_checks(route.dependant))
        assert len(checks) == 1, f"{route.path} must check one token scope"
        if "till" in checks[0]:
            opened |= {(method, route.path) for method in route.methods or ()}
    assert opened == TILL_ROUTES


@pytest.fixture
async def client() -> Any:
    transport = httpx.ASGITransport(app=credential_probe(settings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


@pytest.mark.parametrize(("method", "path"), [("GET", "/read"), ("POST", "/admin")])
async def test_a_till_token_is_forbidden_where_the_till_scope_is_not_taken(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    headers = bearer(TILL, **{"Fedelta-Partner-Id": "p1"})
    response = await client.request(method, path, headers=headers)
    assert response.status_code == 403
    assert response.json()["type"] == "urn:fedelta:problem:forbidden"


@pytest.mark.parametrize("path", ["/balance", "/adjustments"])
async def test_a_till_call_names_its_partner_and_perhaps_its_store(
    client: httpx.AsyncClient, path: str
) -> None:
    headers = bearer(TILL, **{"Fedelta-Partner-Id": "p-1", "Fedelta-Store-Id": "s:7"})
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"scope": "till", "actor": None, "partner": "p-1", "store": "s:7"}
    only_partner = await client.get(path, headers=bearer(TILL, **{"Fedelta-Partner-Id": "p-1"}))
    assert only_partner.json() == {"scope": "till", "actor": None, "partner": "p-1", "store": None}


@pytest.mark.parametrize(
    ("headers", "slug"),
    [
        ({}, "invalid-partner-id"),
        ({"Fedelta-Partner-Id": ""}, "invalid-partner-id"),
        ({"Fedelta-Partner-Id": "two words"}, "invalid-partner-id"),
        ({"Fedelta-Partner-Id": "p" * 65}, "invalid-partner-id"),
        ({"Fedelta-Partner-Id": "-starts-with-a-dash"}, "invalid-partner-id"),
        ({"Fedelta-Partner-Id": "p1", "Fedelta-Store-Id": "a/b"}, "invalid-store-id"),
        ({"Fedelta-Partner-Id": "p1", "Fedelta-Store-Id": "s" * 65}, "invalid-store-id"),
    ],
)
async def test_a_till_call_without_a_valid_partner_or_with_a_bad_store_is_a_400(
    client: httpx.AsyncClient, headers: dict[str, str], slug: str
) -> None:
    response = await client.get("/adjustments", headers=bearer(TILL, **headers))
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == f"urn:fedelta:problem:{slug}"


async def test_other_scopes_keep_their_rules_and_name_no_partner(
    client: httpx.AsyncClient,
) -> None:
    partner = {"Fedelta-Partner-Id": "p1", "Fedelta-Store-Id": "s1"}
    admin = await client.get("/adjustments", headers=bearer(ADMIN, **partner))
    read = await client.get("/balance", headers=bearer(READ, **partner))
    for answer, scope in ((admin, "admin"), (read, "read")):
        answered = answer.json()
        assert answered.pop("actor").startswith(f"{scope}:")  # the token's own name
        assert answered == {"scope": scope, "partner": None, "store": None}
    assert (await client.get("/adjustments", headers=bearer(READ))).status_code == 403
    assert (await client.get("/read", headers=bearer(READ))).status_code == 200
    assert (await client.post("/admin", headers=bearer(READ))).status_code == 403
    assert (await client.get("/balance", headers=bearer("nope" * 5))).status_code == 401
    assert (await client.get("/balance")).status_code == 401


async def test_without_a_till_token_configured_there_is_no_till_access() -> None:
    transport = httpx.ASGITransport(app=credential_probe(settings(till=None)))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        headers = bearer(TILL, **{"Fedelta-Partner-Id": "p1"})
        response = await client.get("/adjustments", headers=headers)
    assert response.status_code == 401


def test_the_idempotency_scope_of_a_till_call_is_its_token_and_its_partner() -> None:
    auth = f"Bearer {TILL}"
    one = call_of("k", auth, "POST", "/v1/x", b"{}", partner_id="p1")
    again = call_of("k", auth, "POST", "/v1/x", b"{}", partner_id="p1")
    other = call_of("k", auth, "POST", "/v1/x", b"{}", partner_id="p2")
    assert one.key_id == again.key_id
    assert one.key_id != other.key_id
    assert one.request_hash == other.request_hash
    # A call naming no partner keeps the scope of its credentials alone, as before.
    plain = call_of("k", auth, "POST", "/v1/x", b"{}")
    assert plain.key_id not in {one.key_id, other.key_id}
    assert plain.scope == call_of("k", auth, "GET", "/v1/y", b"").scope


def test_a_till_holds_lapse_gives_back_under_the_partner_and_store_it_named() -> None:
    now = datetime(2027, 1, 1, tzinfo=UTC)
    hold = Hold("h1", "c1", 40, "lunch", now, now + timedelta(minutes=15), partner_id="p1")
    admins = Hold("h2", "c1", 10, "tea", now, now + timedelta(minutes=15))
    drawn = [Allocation("h1", "lot", 40), Allocation("h2", "lot", 10)]
    lapsed, releases = lapse_all([hold, admins], drawn, now + timedelta(minutes=15))
    assert [h.partner_id for h in lapsed] == ["p1", None]
    assert [(e.partner_id, e.store_id, e.points) for e, _ in releases] == [
        ("p1", None, 40),
        (None, None, 10),
    ]


def test_a_plaintext_till_token_in_the_environment_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # How points was configured before the hash: an upgrade that keeps it must not start and
    # then answer every till call with a 401.
    monkeypatch.setenv("FEDELTA_POINTS_TILL_TOKEN", TILL)
    with pytest.raises(ValueError, match="till_token is no longer read"):
        PointsSettings(
            database_url="postgresql+asyncpg://u:p@localhost:5432/points",
            kafka_bootstrap_servers="localhost:9092",
            admin_token_sha256=sha256_hex(ADMIN),
        )
