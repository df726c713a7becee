"""Credentials per service and per role (issue 19): `read` < `operate` < `admin`, each service
configured with the SHA-256 of its own tokens (two slots per role, for a rotation), and the
actor of a staff action taken from the credential."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, get_args

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.engagement.api.app import create_app as engagement_app
from services.ingest.api.app import create_app as ingest_app
from services.insights.api.app import create_app as insights_app
from services.notifications.api.app import create_app as notifications_app
from services.points.api.app import create_app as points_app
from services.tiers.api.app import create_app as tiers_app
from shared.settings import ServiceSettings
from shared.web.auth import Credential, Role, actor_of, credential_of, token_hash
from shared.web.deps import (
    AdminCredential,
    scopes_taken,
)
from tests.support.service_apps import REQUIRED_OF, credential_probe
from tests.support.service_settings import SETTINGS_CLASSES
from tests.support.stack import sha256_hex

ADMIN = "points-admin-token-0123456789abcdef"
ADMIN_NEXT = "points-admin-token-next-0123456789"
OPERATE = "points-operate-token-0123456789abcd"
READ = "points-read-token-0123456789abcdefg"
# Tiers' admin token: as worthless at points as a made-up one.
TIERS_ADMIN = "tiers-admin-token-0123456789abcdef"


def settings(**overrides: Any) -> ServiceSettings:
    values: dict[str, Any] = {
        "database_url": "postgresql+asyncpg://u:p@localhost:5432/points",
        "kafka_bootstrap_servers": "localhost:9092",
        "port": 8081,
        "admin_token_sha256": sha256_hex(ADMIN),
        "operate_token_sha256": sha256_hex(OPERATE),
        "read_token_sha256": sha256_hex(READ),
    }
    return ServiceSettings(**(values | overrides))


# --- the hashes and the credential a token is ----------------------------------------------


def test_a_token_hash_is_its_sha256_in_hex() -> None:
    assert token_hash("abc") == hashlib.sha256(b"abc").hexdigest()
    assert len(token_hash(ADMIN)) == 64


def test_each_role_is_recognised_by_its_hash_and_names_its_actor() -> None:
    hashes = settings().token_hashes()
    roles: tuple[tuple[str, Role], ...] = ((ADMIN, "admin"), (OPERATE, "operate"), (READ, "read"))
    for token, role in roles:
        assert credential_of(token, hashes) == Credential(role, actor_of(role, token))
    assert actor_of("admin", ADMIN) == f"admin:{sha256_hex(ADMIN)[:12]}"
    assert credential_of(TIERS_ADMIN, hashes) is None
    assert credential_of(sha256_hex(ADMIN), hashes) is None  # the hash is not the token


def test_the_till_token_is_apart_and_names_no_role() -> None:
    till = (sha256_hex("till-token-0123456789abcdef"),)
    credential = credential_of("till-token-0123456789abcdef", settings().token_hashes(), till)
    assert credential == Credential("till", "till")


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_a_token_is_only_ever_recognised_by_its_own_hash(mine: str, other: str) -> None:
    hashes: dict[Role, list[str]] = {"admin": [token_hash(mine)]}
    found = credential_of(other, hashes)
    assert (found is not None) == (mine == other)
    if found is not None:
        assert found.actor == actor_of("admin", mine)


# --- settings ------------------------------------------------------------------------------


def test_settings_hold_hashes_and_two_slots_per_role() -> None:
    loaded = settings(admin_token_sha256_next=sha256_hex(ADMIN_NEXT).upper())
    assert loaded.token_hashes() == {
        "read": (sha256_hex(READ),),
        "operate": (sha256_hex(OPERATE),),
        "admin": (sha256_hex(ADMIN), sha256_hex(ADMIN_NEXT)),  # lower-cased
    }
    assert settings(read_token_sha256=None, operate_token_sha256=None).token_hashes() == {
        "read": (),
        "operate": (),
        "admin": (sha256_hex(ADMIN),),
    }


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"admin_token_sha256": ADMIN}, "admin_token_sha256"),  # a token, not its hash
        ({"admin_token_sha256": "ab" * 31}, "admin_token_sha256"),  # too short
        ({"read_token_sha256_next": "g" * 64}, "read_token_sha256_next"),
        ({"read_token_sha256": sha256_hex(ADMIN)}, "two roles"),
        ({"operate_token_sha256_next": sha256_hex(READ)}, "two roles"),
        ({"till_token_sha256": sha256_hex(OPERATE)}, "two roles"),
        ({"till_token_sha256": "TILL" * 4}, "till_token_sha256"),  # the token, not its hash
    ],
)
def test_a_malformed_or_ambiguous_credential_stops_the_service(
    overrides: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint):
        settings(**overrides)


def test_the_admin_hash_is_required() -> None:
    with pytest.raises(ValidationError, match="admin_token_sha256"):
        ServiceSettings(
            database_url="postgresql+asyncpg://u:p@localhost:5432/points",
            kafka_bootstrap_servers="localhost:9092",
            port=8081,
        )


def test_one_hash_in_both_slots_of_a_role_is_harmless() -> None:
    same = settings(admin_token_sha256_next=sha256_hex(ADMIN))
    assert credential_of(ADMIN, same.token_hashes()) == Credential(
        "admin", actor_of("admin", ADMIN)
    )


# --- the dependencies: what each role opens ------------------------------------------------


async def _client(service_settings: ServiceSettings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=credential_probe(service_settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(settings()):
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _statuses(client: httpx.AsyncClient, token: str) -> dict[str, int]:
    read = await client.get("/read", headers=bearer(token))
    answers = {"/read": read.status_code}
    for path in ("/operate", "/admin", "/adjust"):
        answers[path] = (await client.post(path, headers=bearer(token))).status_code
    return answers


async def test_each_role_opens_its_calls_and_those_below(client: httpx.AsyncClient) -> None:
    assert await _statuses(client, READ) == {
        "/read": 200,
        "/operate": 403,
        "/admin": 403,
        "/adjust": 403,
    }
    assert await _statuses(client, OPERATE) == {
        "/read": 200,
        "/operate": 200,
        "/admin": 403,
        "/adjust": 403,
    }
    assert await _statuses(client, ADMIN) == {
        "/read": 200,
        "/operate": 200,
        "/admin": 200,
        "/adjust": 200,
    }
    refused = await client.post("/admin", headers=bearer(OPERATE))
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"] == "urn:fedelta:problem:forbidden"
    assert "admin role" in refused.json()["detail"]


async def test_a_token_of_another_service_is_unknown(client: httpx.AsyncClient) -> None:
    assert set((await _statuses(client, TIERS_ADMIN)).values()) == {401}
    assert set((await _statuses(client, sha256_hex(ADMIN))).values()) == {401}


async def test_the_actor_is_the_credential(client: httpx.AsyncClient) -> None:
    answer = await client.post("/adjust", headers=bearer(ADMIN))
    assert answer.json() == {"scope": "admin", "actor": actor_of("admin", ADMIN)}


async def test_a_rotation_accepts_both_tokens_then_only_the_new() -> None:
    before = settings()
    during = settings(admin_token_sha256_next=sha256_hex(ADMIN_NEXT))
    after = settings(admin_token_sha256=sha256_hex(ADMIN_NEXT))
    seen: list[tuple[int, int]] = []
    actors: list[str] = []
    for stage in (before, during, after):
        async for client in _client(stage):
            old = await client.post("/adjust", headers=bearer(ADMIN))
            new = await client.post("/adjust", headers=bearer(ADMIN_NEXT))
            seen.append((old.status_code, new.status_code))
            actors += [a.json()["actor"] for a in (old, new) if a.status_code == 200]
    assert seen == [(200, 401), (200, 200), (401, 200)]
    # Each token names itself: who acted stays told apart across the rotation.
    assert actors == [actor_of("admin", ADMIN)] * 2 + [actor_of("admin", ADMIN_NEXT)] * 2


# --- the services' routes: which role each needs -------------------------------------------

# The calls the operate role opens (beyond the reads), on every service.
OPERATE_CALLS = {
    ("POST", "/v1/admin/jobs/{name}"),
    ("POST", "/v1/held/{held_id}/release"),
    ("POST", "/v1/held/{held_id}/reject"),
}
# The calls that record who acted: the admin credential's actor.
ACTOR_CALLS = {
    ("points", "POST", "/v1/customers/{customer_id}/adjustments"),
    ("tiers", "POST", "/v1/customers/{customer_id}/tier"),
    # A member's consent changed through the web's wallet: who acted is logged.
    ("ingest", "PUT", "/v1/customers/{customer_id}/consent"),
}
CREATE_APPS = {
    "ingest": ingest_app,
    "points": points_app,
    "tiers": tiers_app,
    "notifications": notifications_app,
    "engagement": engagement_app,
    "insights": insights_app,
}


def _service_settings(service: str) -> Any:
    return SETTINGS_CLASSES[service](
        database_url=f"postgresql+asyncpg://u:p@localhost:5432/{service}",
        kafka_bootstrap_servers="localhost:9092",
        admin_token_sha256=sha256_hex(ADMIN),
        **REQUIRED_OF.get(service, {}),
    )


def _scope_checks(dependant: Dependant) -> Iterator[tuple[object, frozenset[str]]]:
    for sub in dependant.dependencies:
        if (taken := scopes_taken(sub.call)) is not None:
            yield sub.call, taken
        yield from _scope_checks(sub)


def _api_routes(routes: Iterable[object]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(included.routes)


@pytest.mark.parametrize("service", list(CREATE_APPS))
def test_reads_alone_are_open_to_the_read_role_and_few_calls_to_operate(service: str) -> None:
    app = CREATE_APPS[service](_service_settings(service))
    actor_check = get_args(AdminCredential)[1].dependency
    checked = 0
    for route in _api_routes(app.routes):
        checks = list(_scope_checks(route.dependant))
        if not checks:
            continue  # signed partner calls, probes, unsubscribe links
        assert len(checks) == 1, route.path
        [(check, taken)] = checks
        for method in route.methods or ():
            checked += 1
            if method != "GET":
                assert "read" not in taken, (service, method, route.path)
            opened_to_operate = "operate" in taken and method != "GET"
            assert opened_to_operate == ((method, route.path) in OPERATE_CALLS), route.path
            records_actor = (service, method, route.path) in ACTOR_CALLS
            assert (check is actor_check) == records_actor, (service, method, route.path)
    assert checked >= 3
