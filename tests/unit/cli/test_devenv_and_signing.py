"""The CLI's settings (dev.env, overridden by the environment) and the POS client's
signature, verified the way ingest verifies it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from fedelta_cli.operations import database_urls
from fedelta_client import StackClient
from fedelta_client.devenv import DevEnv, DevEnvError, kafka_bootstrap_servers
from shared.web.auth import SIGNATURE_HEADER, SignatureError, verify_signature

DEV_ENV = """\
FEDELTA_INGEST_URL=http://127.0.0.1:8080
FEDELTA_POINTS_URL=http://127.0.0.1:8081/
FEDELTA_TIERS_URL=http://127.0.0.1:8082
FEDELTA_NOTIFICATIONS_URL=http://127.0.0.1:8083
FEDELTA_ENGAGEMENT_URL=http://127.0.0.1:8084
FEDELTA_INSIGHTS_URL=http://127.0.0.1:8085
FEDELTA_WEB_URL=http://127.0.0.1:8086/
FEDELTA_CONSOLE_USER=admin
FEDELTA_CONSOLE_PASSWORD=console-secret
FEDELTA_PARTNER_ID=demo
FEDELTA_PARTNER_KEY=fk_key
FEDELTA_PARTNER_SECRET=fs_secret
FEDELTA_INGEST_READ_TOKEN=ingest-read
FEDELTA_INGEST_OPERATE_TOKEN=ingest-operate
FEDELTA_INGEST_ADMIN_TOKEN=ingest-admin
FEDELTA_POINTS_READ_TOKEN=points-read
FEDELTA_POINTS_OPERATE_TOKEN=points-operate
FEDELTA_POINTS_ADMIN_TOKEN=points-admin
FEDELTA_TIERS_READ_TOKEN=tiers-read
FEDELTA_TIERS_OPERATE_TOKEN=tiers-operate
FEDELTA_TIERS_ADMIN_TOKEN=tiers-admin
FEDELTA_NOTIFICATIONS_READ_TOKEN=notifications-read
FEDELTA_NOTIFICATIONS_OPERATE_TOKEN=notifications-operate
FEDELTA_NOTIFICATIONS_ADMIN_TOKEN=notifications-admin
FEDELTA_ENGAGEMENT_READ_TOKEN=engagement-read
FEDELTA_ENGAGEMENT_OPERATE_TOKEN=engagement-operate
FEDELTA_ENGAGEMENT_ADMIN_TOKEN=engagement-admin
FEDELTA_INSIGHTS_READ_TOKEN=insights-read
FEDELTA_INSIGHTS_OPERATE_TOKEN=insights-operate
FEDELTA_INSIGHTS_ADMIN_TOKEN=insights-admin
FEDELTA_WEB_READ_TOKEN=web-read
FEDELTA_WEB_OPERATE_TOKEN=web-operate
FEDELTA_WEB_ADMIN_TOKEN=web-admin
FEDELTA_MAIL_DIR=/srv/fedelta/mail
KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092
"""


@pytest.fixture
def dev_env(tmp_path: Path) -> Path:
    path = tmp_path / "dev.env"
    path.write_text(DEV_ENV)
    return path


def test_the_file_gives_every_setting_and_the_environment_wins(dev_env: Path) -> None:
    env = DevEnv.load(dev_env, environ={"FEDELTA_TIERS_URL": "http://tiers:9000"})
    assert env.points_url == "http://127.0.0.1:8081"  # the trailing slash removed
    assert env.tiers_url == "http://tiers:9000"
    assert env.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert env.mail_dir == Path("/srv/fedelta/mail")


def test_without_a_file_the_environment_alone_is_enough(tmp_path: Path, dev_env: Path) -> None:
    environ = dict(line.split("=", 1) for line in DEV_ENV.splitlines())
    env = DevEnv.load(tmp_path / "absent.env", environ=environ)
    assert env.ingest_url == "http://127.0.0.1:8080"
    assert kafka_bootstrap_servers({"FEDELTA_DEV_ENV": str(dev_env)}) == "127.0.0.1:9092"


def test_missing_settings_are_named(tmp_path: Path) -> None:
    with pytest.raises(DevEnvError) as raised:
        DevEnv.load(tmp_path / "absent.env", environ={"FEDELTA_INGEST_URL": "http://x"})
    assert "FEDELTA_POINTS_URL" in raised.value.message
    assert "FEDELTA_INGEST_URL" not in raised.value.message


def test_database_urls_come_from_dev_env_or_the_services_env_beside_it(tmp_path: Path) -> None:
    (tmp_path / "services.env").write_text(
        "FEDELTA_POINTS_DATABASE_URL=postgresql+asyncpg://p\nFEDELTA_POINTS_ADMIN_TOKEN=x\n"
    )
    urls = database_urls(
        tmp_path / "dev.env", {"FEDELTA_INGEST_DATABASE_URL": "postgresql+asyncpg://i"}
    )
    assert urls == {"ingest": "postgresql+asyncpg://i", "points": "postgresql+asyncpg://p"}


async def test_the_pos_client_signs_method_path_query_and_body_as_ingest_checks(
    dev_env: Path,
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json={"event_id": "e-1"})

    env = DevEnv.load(dev_env, environ={})
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        pos = StackClient(env, http)
        await pos.send("POST", "/v1/purchases/p 1/refunds?x=é", {"amount": "1.00"})
        await pos.send("POST", "/v1/customers", {"customer_id": "c"}, secret="wrong")
    good, bad = seen
    assert good.headers["Authorization"] == "Bearer fk_key"
    now = datetime.now(UTC)
    target = good.url.raw_path
    verify_signature("fs_secret", good.headers[SIGNATURE_HEADER], "POST", target, good.content, now)
    with pytest.raises(SignatureError):  # another path with the same signature
        verify_signature(
            "fs_secret", good.headers[SIGNATURE_HEADER], "POST", b"/v1/x", good.content, now
        )
    with pytest.raises(SignatureError):
        verify_signature(
            "fs_secret", bad.headers[SIGNATURE_HEADER], "POST", bad.url.raw_path, bad.content, now
        )
