"""The console's credential (issue 22): a token slot of every service (two, for a rotation)
held by the web console, which opens what the admin role does for the person the call names
in `Fedelta-Actor`; the actor recorded is `console:<that person>`. The header is required
with it and ignored with every other credential."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.settings import ServiceSettings
from shared.web.auth import (
    ACTOR_HEADER,
    ActorError,
    Credential,
    actor_of,
    console_actor,
    credential_of,
)
from tests.support.service_apps import credential_probe, service_app
from tests.support.service_settings import load_with
from tests.support.stack import sha256_hex

ADMIN = "points-admin-token-0123456789abcdef"
READ = "points-read-token-0123456789abcdefg"
TILL = "points-till-token-0123456789abcdefg"
CONSOLE = "points-console-token-0123456789abcd"
CONSOLE_NEXT = "points-console-token-next-012345678"
# Tiers' console token: as worthless at points as a made-up one.
TIERS_CONSOLE = "tiers-console-token-0123456789abcde"
# The services the console calls, each with a console slot of its own.
CONSOLE_SERVICES = ("ingest", "points", "tiers", "notifications", "engagement", "insights")


def settings(**overrides: Any) -> ServiceSettings:
    values: dict[str, Any] = {
        "database_url": "postgresql+asyncpg://u:p@localhost:5432/points",
        "kafka_bootstrap_servers": "localhost:9092",
        "port": 8081,
        "admin_token_sha256": sha256_hex(ADMIN),
        "read_token_sha256": sha256_hex(READ),
        "till_token_sha256": sha256_hex(TILL),
        "console_token_sha256": sha256_hex(CONSOLE),
    }
    return ServiceSettings(**(values | overrides))


def call(token: str, actor: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if actor is not None:
        headers[ACTOR_HEADER] = actor
    return headers


# --- settings ------------------------------------------------------------------------------


def test_the_console_has_two_slots_of_its_own() -> None:
    loaded = settings(console_token_sha256_next=sha256_hex(CONSOLE_NEXT).upper())
    assert loaded.console_hashes() == (sha256_hex(CONSOLE), sha256_hex(CONSOLE_NEXT))
    assert settings(console_token_sha256=None).console_hashes() == ()
    assert sha256_hex(CONSOLE) not in {h for hs in loaded.token_hashes().values() for h in hs}


@pytest.mark.parametrize(
    "overrides",
    [
        {"console_token_sha256": sha256_hex(ADMIN)},
        {"console_token_sha256_next": sha256_hex(READ)},
        {"console_token_sha256": sha256_hex(TILL)},
        {"admin_token_sha256_next": sha256_hex(CONSOLE)},
    ],
)
def test_a_console_token_that_is_also_another_credential_stops_the_service(
    overrides: dict[str, Any],
) -> None:
    with pytest.raises(ValidationError, match="two roles"):
        settings(**overrides)


def test_a_console_slot_holds_a_hash_not_a_token() -> None:
    with pytest.raises(ValidationError, match="console_token_sha256"):
        settings(console_token_sha256=CONSOLE)


@pytest.mark.parametrize("service", CONSOLE_SERVICES)
def test_every_service_reads_its_console_slots_from_its_environment(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"FEDELTA_{service.upper()}_"
    env = {
        f"{prefix}DATABASE_URL": f"postgresql+asyncpg://u:p@localhost:5432/{service}",
        f"{prefix}KAFKA_BOOTSTRAP_SERVERS": "localhost:9092",
        f"{prefix}ADMIN_TOKEN_SHA256": sha256_hex(ADMIN),
        f"{prefix}CONSOLE_TOKEN_SHA256": sha256_hex(CONSOLE),
        f"{prefix}CONSOLE_TOKEN_SHA256_NEXT": sha256_hex(CONSOLE_NEXT),
    }
    if service == "engagement":
        env[f"{prefix}SURPRISE_SECRET"] = "service-apps-surprise-secret-0123456789"
    loaded = load_with(service, env, monkeypatch)
    assert isinstance(loaded, ServiceSettings)
    assert loaded.console_hashes() == (sha256_hex(CONSOLE), sha256_hex(CONSOLE_NEXT))


# --- the credential a console token is -----------------------------------------------------


def _credential(token: str, actor: str | None) -> Credential | None:
    known = settings()
    return credential_of(
        token,
        known.token_hashes(),
        known.till_hashes(),
        known.console_hashes(),
        named_actor=actor,
    )


def test_a_console_token_is_the_admin_role_for_the_person_named() -> None:
    assert _credential(CONSOLE, "staff:alice") == Credential("admin", "console:staff:alice")
    assert _credential(CONSOLE, "member:c-123") == Credential("admin", "console:member:c-123")


def test_a_console_token_naming_nobody_or_a_malformed_label_is_refused() -> None:
    with pytest.raises(ActorError) as missing:
        _credential(CONSOLE, None)
    assert missing.value.slug == "actor-required"
    for malformed in ("", "x" * 65, "staff:\nalice", "staff:\x00", "staff\x85"):
        with pytest.raises(ActorError) as refused:
            _credential(CONSOLE, malformed)
        assert refused.value.slug == "invalid-actor"


def test_the_header_changes_no_other_credential() -> None:
    assert _credential(ADMIN, "staff:alice") == Credential("admin", actor_of("admin", ADMIN))
    assert _credential(READ, "staff:alice") == Credential("read", actor_of("read", READ))
    assert _credential(TILL, "staff:alice") == Credential("till", "till")
    # Malformed or missing, it matters only to a console token.
    assert _credential(ADMIN, "\x00" * 100) == Credential("admin", actor_of("admin", ADMIN))
    assert _credential(TIERS_CONSOLE, None) is None
    assert _credential(sha256_hex(CONSOLE), "staff:alice") is None  # the hash is not the token


@given(st.text(min_size=1, max_size=64).filter(lambda s: s.isprintable()))
def test_any_printable_label_within_the_bound_is_named_as_it_is(label: str) -> None:
    assert console_actor(label) == f"console:{label}"


# --- the dependencies ----------------------------------------------------------------------


async def _client(service_settings: ServiceSettings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=credential_probe(service_settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(settings()):
        yield client


async def test_a_console_call_naming_its_person_is_admin_with_that_actor(
    client: httpx.AsyncClient,
) -> None:
    named = call(CONSOLE, "staff:alice")
    adjusted = await client.post("/adjust", headers=named)
    assert adjusted.status_code == 200, adjusted.text
    assert adjusted.json() == {"scope": "admin", "actor": "console:staff:alice"}
    assert (await client.post("/admin", headers=named)).json() == {"scope": "admin"}
    assert (await client.get("/read", headers=named)).json() == {"scope": "admin"}
    balance = await client.get("/balance", headers=named)
    assert balance.json() == {
        "scope": "admin",
        "actor": "console:staff:alice",
        "partner": None,
        "store": None,
    }


@pytest.mark.parametrize("path", ["/read", "/admin", "/adjust", "/balance"])
async def test_a_console_call_naming_nobody_is_a_400_problem(
    client: httpx.AsyncClient, path: str
) -> None:
    method = client.get if path in {"/read", "/balance"} else client.post
    answer = await method(path, headers=call(CONSOLE))
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"] == "urn:fedelta:problem:actor-required"
    assert ACTOR_HEADER in answer.json()["detail"]


@pytest.mark.parametrize("named", ["", "a" * 65, "staff:alice\x7f"])
async def test_a_console_call_naming_a_malformed_actor_is_a_400_problem(
    client: httpx.AsyncClient, named: str
) -> None:
    answer = await client.post("/adjust", headers=call(CONSOLE, named))
    assert answer.status_code == 400
    assert answer.json()["type"] == "urn:fedelta:problem:invalid-actor"
    if named:
        assert named not in answer.json()["detail"]  # what was sent is never echoed


async def test_another_services_console_token_is_unknown(client: httpx.AsyncClient) -> None:
    for headers in (call(TIERS_CONSOLE, "staff:alice"), call(TIERS_CONSOLE)):
        answer = await client.post("/adjust", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["type"] == "urn:fedelta:problem:unauthorized"


async def test_the_header_with_another_credential_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    for named in ("staff:alice", "\x01" * 80):
        adjusted = await client.post("/adjust", headers=call(ADMIN, named))
        assert adjusted.json() == {"scope": "admin", "actor": actor_of("admin", ADMIN)}
        assert (await client.post("/admin", headers=call(READ, named))).status_code == 403


async def test_a_console_rotation_accepts_both_tokens_then_only_the_new() -> None:
    stages = (
        settings(),
        settings(console_token_sha256_next=sha256_hex(CONSOLE_NEXT)),
        settings(console_token_sha256=sha256_hex(CONSOLE_NEXT)),
    )
    seen: list[tuple[int, int]] = []
    for stage in stages:
        async for client in _client(stage):
            old = await client.post("/adjust", headers=call(CONSOLE, "staff:bob"))
            new = await client.post("/adjust", headers=call(CONSOLE_NEXT, "staff:bob"))
            seen.append((old.status_code, new.status_code))
    assert seen == [(200, 401), (200, 200), (401, 200)]


async def test_no_console_slot_no_console() -> None:
    async for client in _client(settings(console_token_sha256=None)):
        answer = await client.post("/adjust", headers=call(CONSOLE, "staff:alice"))
        assert answer.status_code == 401


def test_the_header_is_not_an_operation_parameter_of_any_service() -> None:
    for service in CONSOLE_SERVICES:
        document = service_app(service).openapi()
        for item in document["paths"].values():
            for operation in item.values():
                names = {p["name"].lower() for p in operation.get("parameters", [])}
                assert ACTOR_HEADER.lower() not in names
