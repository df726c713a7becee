"""Issue 20: the clients know the engagement service. dev.env gives its URL
(`FEDELTA_ENGAGEMENT_URL`) and its tokens; a dev.env written before it is refused, naming what
is missing and that `make up` writes it; the reads of a member's stamp cards, challenges and
badges go to engagement with engagement's own read token; code that builds `ServiceUrls`
without engagement keeps working, and only a call to engagement then fails, by name."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fedelta_client import InternalClient, ServiceUrls, StackClient
from fedelta_client.devenv import ROLES, SERVICES, DevEnv, DevEnvError, token_variable

BEFORE_ENGAGEMENT = {
    "FEDELTA_INGEST_URL": "http://ingest:8080",
    "FEDELTA_POINTS_URL": "http://points:8081",
    "FEDELTA_TIERS_URL": "http://tiers:8082",
    "FEDELTA_NOTIFICATIONS_URL": "http://notifications:8083",
    "FEDELTA_PARTNER_KEY": "fk",
    "FEDELTA_PARTNER_SECRET": "fs",
} | {
    token_variable(service, role): f"{service}-{role}"
    for service in ("ingest", "points", "tiers", "notifications")
    for role in ROLES
}
ENGAGEMENT = {"FEDELTA_ENGAGEMENT_URL": "http://engagement:8084/"} | {
    token_variable("engagement", role): f"engagement-{role}" for role in ROLES
}
# What came after engagement (issue 21): a dev.env has it too.
INSIGHTS = {"FEDELTA_INSIGHTS_URL": "http://insights:8085"} | {
    token_variable("insights", role): f"insights-{role}" for role in ROLES
}
# And the web (issue 22).
WEB = {"FEDELTA_WEB_URL": "http://web:8086"} | {
    token_variable("web", role): f"web-{role}" for role in ROLES
}
NOWHERE = Path("/nonexistent/dev.env")


def test_dev_env_holds_engagements_url_and_tokens() -> None:
    env = DevEnv.load(NOWHERE, environ=BEFORE_ENGAGEMENT | ENGAGEMENT | INSIGHTS | WEB)
    assert "engagement" in SERVICES
    assert env.engagement_url == "http://engagement:8084"  # the trailing slash removed
    assert env.service_url("engagement") == env.engagement_url
    assert env.token("engagement", "read") == "engagement-read"
    assert env.tokens_of("admin")["engagement"] == "engagement-admin"


def test_a_dev_env_from_before_engagement_is_refused_naming_what_make_up_adds() -> None:
    with pytest.raises(DevEnvError) as raised:
        DevEnv.load(NOWHERE, environ=BEFORE_ENGAGEMENT)
    message = raised.value.message
    assert "FEDELTA_ENGAGEMENT_URL" in message
    assert "FEDELTA_ENGAGEMENT_READ_TOKEN" in message and "make up" in message
    assert "FEDELTA_POINTS_URL" not in message


async def test_the_member_reads_go_to_engagement_with_its_own_read_token() -> None:
    seen: list[tuple[str, str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.url.path, request.headers["Authorization"]))
        return httpx.Response(200, json={"items": []})

    env = DevEnv.load(NOWHERE, environ=BEFORE_ENGAGEMENT | ENGAGEMENT | INSIGHTS | WEB)
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        stack = StackClient(env, http)
        assert (await stack.stamp_cards("c-1")).status_code == 200
        await stack.challenges("c-1")
        await stack.badges("c-1")
        reader = InternalClient.from_dev_env(http, env)
        await reader.stamp_cards("c-2")
        admin = InternalClient.from_dev_env(http, env, admin=True)
        await admin.run_job("engagement", "purge-inbox")
    assert seen == [
        ("engagement", "/v1/customers/c-1/stamp-cards", "Bearer engagement-read"),
        ("engagement", "/v1/customers/c-1/challenges", "Bearer engagement-read"),
        ("engagement", "/v1/customers/c-1/badges", "Bearer engagement-read"),
        ("engagement", "/v1/customers/c-2/stamp-cards", "Bearer engagement-read"),
        ("engagement", "/v1/admin/jobs/purge-inbox", "Bearer engagement-admin"),
    ]


async def test_service_urls_without_engagement_still_serve_the_others() -> None:
    urls = ServiceUrls("http://ingest", "http://points", "http://tiers", "http://notifications")
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        return httpx.Response(200, json={})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = InternalClient(http, urls=urls, token="t")
        await client.balance("c-1")
        assert client.service_of("http://notifications/v1/x") == "notifications"
        with pytest.raises(ValueError, match="no URL given for the service 'engagement'"):
            await client.badges("c-1")
        with pytest.raises(ValueError, match="none of the services"):
            await client.get("http://engagement/v1/customers/c-1/badges")
    assert sent == ["http://points/v1/customers/c-1/balance"]
    assert urls.known() == ("ingest", "points", "tiers", "notifications")
    full = ServiceUrls("http://i", "http://p", "http://t", "http://n", "http://e/")
    assert full.of("engagement") == "http://e" and "engagement" in full.known()
