"""Issue 22: dev.env names the web (FEDELTA_WEB_URL) and the console's first staff account, and
`make demo` ends with the member's wallet link and the console's address, never the password."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from fedelta_cli.demo import web_links
from fedelta_client import StackClient
from fedelta_client.devenv import ROLES, SERVICES, DevEnv, DevEnvError, token_variable
from tests.support.devenv import FAKE_DEV_ENV

NOWHERE = Path("/nonexistent/dev.env")
ENV = {
    "FEDELTA_INGEST_URL": "http://ingest:8080",
    "FEDELTA_POINTS_URL": "http://points:8081",
    "FEDELTA_TIERS_URL": "http://tiers:8082",
    "FEDELTA_NOTIFICATIONS_URL": "http://notifications:8083",
    "FEDELTA_ENGAGEMENT_URL": "http://engagement:8084",
    "FEDELTA_INSIGHTS_URL": "http://insights:8085",
    "FEDELTA_WEB_URL": "http://127.0.0.1:8086/",
    "FEDELTA_PARTNER_KEY": "fk",
    "FEDELTA_PARTNER_SECRET": "fs",
} | {token_variable(service, role): f"{service}-{role}" for service in SERVICES for role in ROLES}
CONSOLE = {"FEDELTA_CONSOLE_USER": "admin", "FEDELTA_CONSOLE_PASSWORD": "s3cret-console"}


def test_dev_env_holds_the_webs_address_and_the_consoles_account() -> None:
    env = DevEnv.load(NOWHERE, environ=ENV | CONSOLE)
    assert env.web_url == "http://127.0.0.1:8086"  # the trailing slash removed
    assert env.service_url("web") == env.web_url
    assert env.wallet_sign_in_url == "http://127.0.0.1:8086/wallet/sign-in"
    assert env.console_url == "http://127.0.0.1:8086/console"
    assert (env.console_user, env.console_password) == ("admin", "s3cret-console")
    assert "s3cret-console" not in repr(env)


def test_the_console_account_is_optional_and_the_webs_address_is_not() -> None:
    env = DevEnv.load(NOWHERE, environ=ENV)
    assert env.console_user is None and env.console_password is None
    before_the_web = {k: v for k, v in ENV.items() if not k.startswith("FEDELTA_WEB_")}
    with pytest.raises(DevEnvError) as raised:
        DevEnv.load(NOWHERE, environ=before_the_web)
    assert "FEDELTA_WEB_URL" in raised.value.message and "make up" in raised.value.message


def test_the_demo_prints_the_receipts_wallet_link_and_the_console_without_its_password() -> None:
    link = "http://web/wallet/receipt?c=demo-1&p=p-1&e=1&s=ab"
    wallet, console = web_links(FAKE_DEV_ENV, link)
    assert wallet.endswith(link)
    assert "http://web/console" in console and "user admin" in console
    assert "FEDELTA_CONSOLE_PASSWORD" in console and ".fedelta/dev.env" in console
    assert FAKE_DEV_ENV.console_password is not None
    assert FAKE_DEV_ENV.console_password not in wallet + console


def test_without_a_receipt_link_the_demo_points_to_the_wallets_sign_in_page() -> None:
    wallet, _ = web_links(FAKE_DEV_ENV, None)
    assert wallet.endswith("http://web/wallet/sign-in")


async def test_the_purchase_answer_is_ingests_whole_body_with_its_wallet_link() -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        body = {"event_id": "e-1", "wallet_url": "http://web/wallet/receipt?c=a"}
        return httpx.Response(202, json=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        got = await StackClient(FAKE_DEV_ENV, http).purchase_answer("anna", "250.00")
    assert got == {"event_id": "e-1", "wallet_url": "http://web/wallet/receipt?c=a"}
    (request,) = sent
    assert request.url.path == "/v1/purchases" and request.headers["Idempotency-Key"]
    body = json.loads(request.content)
    assert (body["customer_id"], body["total"], body["currency"]) == ("anna", "250.00", "EUR")
