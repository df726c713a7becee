"""The clients in the repository (the `fedelta` command, bench, chaos, the end-to-end tests)
reach every service with that service's own token: dev.env holds them by service and role,
and InternalClient picks the one of the service a call goes to."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fedelta_client import InternalClient, ServiceUrls, StackClient
from fedelta_client.devenv import ROLES, SERVICES, DevEnv, DevEnvError, token_variable

URLS = {
    "FEDELTA_INGEST_URL": "http://ingest:8080",
    "FEDELTA_POINTS_URL": "http://points:8081",
    "FEDELTA_TIERS_URL": "http://tiers:8082",
    "FEDELTA_NOTIFICATIONS_URL": "http://notifications:8083",
    "FEDELTA_ENGAGEMENT_URL": "http://engagement:8084",
    "FEDELTA_INSIGHTS_URL": "http://insights:8085",
    "FEDELTA_WEB_URL": "http://web:8086",
    "FEDELTA_PARTNER_KEY": "fk",
    "FEDELTA_PARTNER_SECRET": "fs",
}
TOKENS = {
    token_variable(service, role): f"{service}-{role}-token"
    for service in SERVICES
    for role in ROLES
}


def dev_env(**changes: str) -> DevEnv:
    return DevEnv.load(Path("/nonexistent/dev.env"), environ=URLS | TOKENS | changes)


def test_dev_env_holds_each_services_token_of_each_role() -> None:
    env = dev_env()
    assert token_variable("points", "admin") == "FEDELTA_POINTS_ADMIN_TOKEN"
    assert env.token("points", "admin") == "points-admin-token"
    assert env.token("tiers", "operate") == "tiers-operate-token"
    assert env.tokens_of("read") == {s: f"{s}-read-token" for s in SERVICES}
    with pytest.raises(DevEnvError, match="unknown service"):
        env.token("billing", "admin")


def test_a_dev_env_without_the_services_own_tokens_names_them() -> None:
    old = {"FEDELTA_ADMIN_TOKEN": "one-for-all", "FEDELTA_READ_TOKEN": "one-for-all-reads"}
    with pytest.raises(DevEnvError) as raised:
        DevEnv.load(Path("/nonexistent/dev.env"), environ=URLS | old)
    assert "FEDELTA_POINTS_ADMIN_TOKEN" in raised.value.message
    assert "FEDELTA_TIERS_OPERATE_TOKEN" in raised.value.message
    assert "make up" in raised.value.message


async def test_the_internal_client_sends_each_service_its_own_token() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": [], "jobs": []})

    env = dev_env()
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        admin = InternalClient.from_dev_env(http, env, admin=True)
        await admin.partners()
        await admin.run_job("tiers", "review-tiers")
        operator = InternalClient.from_dev_env(http, env, role="operate")
        await operator.run_job("points", "expire-points")
        reader = InternalClient.from_dev_env(http, env)
        await reader.balance("c-1")  # by URL
        await reader.notifications("c-1")
        await reader.get(f"{env.tiers_url}/v1/tiers")
    assert [(r.url.host, r.headers["Authorization"]) for r in seen] == [
        ("ingest", "Bearer ingest-admin-token"),
        ("tiers", "Bearer tiers-admin-token"),
        ("points", "Bearer points-operate-token"),
        ("points", "Bearer points-read-token"),
        ("notifications", "Bearer notifications-read-token"),
        ("tiers", "Bearer tiers-read-token"),
    ]


async def test_the_stack_client_reads_operates_and_administers_each_service_with_its_own() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.url.host} {request.headers['Authorization']}")
        return httpx.Response(200, json={})

    env = dev_env()
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        stack = StackClient(env, http)
        await stack.admin_post(f"{env.tiers_url}/v1/customers/c-1/tier", {"tier": "gold"})
        await stack.read(f"{env.points_url}/v1/customers/c-1/ledger")
        await stack.operator.post(f"{env.points_url}/v1/held/h-1/release")
    assert seen == [
        "tiers Bearer tiers-admin-token",
        "points Bearer points-read-token",
        "points Bearer points-operate-token",
    ]


async def test_one_token_for_a_single_service_still_works_and_a_foreign_url_is_refused() -> None:
    urls = ServiceUrls("http://ingest", "http://points", "http://tiers", "http://notifications")
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as (
        http
    ):
        client = InternalClient(http, urls=urls, token="only-points")
        assert client.authorization("points") == {"Authorization": "Bearer only-points"}
        assert client.service_of("http://points/v1/x") == "points"
        assert client.service_of("http://points") == "points"
        with pytest.raises(ValueError, match="none of the services"):
            await client.get("http://pointsevil/v1/x")  # never sent a token it has
        with pytest.raises(ValueError, match="a token or tokens"):
            InternalClient(http, urls=urls)
