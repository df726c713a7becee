"""Issue 19, the till token on points: points holds the till token's SHA-256 only (`_NEXT`
during a rotation) and compares the presented token's hash; ingest keeps the token itself,
to call points with. Everywhere points is configured: the settings, the local stack, compose,
Kubernetes and the test stack."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from services.points.settings import PointsSettings
from shared.web.auth import credential_of
from tests.support.stack import TILL_TOKEN, Stack, sha256_hex

REPO = Path(__file__).resolve().parents[3]
OLD, NEW = "till-token-old-0123456789abcdef", "till-token-new-0123456789abcdef"


def points(**till: str) -> PointsSettings:
    return PointsSettings(
        database_url="postgresql+asyncpg://u:p@localhost:5432/points",
        kafka_bootstrap_servers="localhost:9092",
        admin_token_sha256=sha256_hex("admin-token-0123456789abcdef"),
        **till,  # type: ignore[arg-type]
    )


def scope(settings: PointsSettings, presented: str) -> str | None:
    credential = credential_of(presented, settings.token_hashes(), settings.till_hashes())
    return None if credential is None else credential.scope


def test_points_knows_the_till_token_by_its_hash_and_rotates_it_without_downtime() -> None:
    current = points(till_token_sha256=sha256_hex(OLD))
    assert scope(current, OLD) == "till"
    assert scope(current, sha256_hex(OLD)) is None  # the hash is not the token
    assert scope(current, NEW) is None
    during = points(till_token_sha256=sha256_hex(OLD), till_token_sha256_next=sha256_hex(NEW))
    assert scope(during, OLD) == scope(during, NEW) == "till"
    after = points(till_token_sha256=sha256_hex(NEW))
    assert scope(after, OLD) is None and scope(after, NEW) == "till"
    assert scope(points(), OLD) is None  # unset: no till access


def test_points_has_no_setting_that_holds_the_till_token_itself() -> None:
    fields = set(PointsSettings.model_fields)
    assert {"till_token_sha256", "till_token_sha256_next"} <= fields
    # `till_token` is read only to be refused: points never starts holding the token itself.
    with pytest.raises(ValidationError, match="till_token is no longer read"):
        points(till_token=OLD)


def test_the_deployments_give_points_the_hash_and_ingest_the_token() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    points_env = compose["services"]["points"]["environment"]
    ingest_env = compose["services"]["ingest"]["environment"]
    assert "FEDELTA_POINTS_TILL_TOKEN" not in points_env
    assert "TILL_TOKEN_SHA256" in points_env["FEDELTA_POINTS_TILL_TOKEN_SHA256"]
    assert "FEDELTA_INGEST_POINTS_TOKEN" in ingest_env
    manifest = (REPO / "deploy/k8s/base/points.yaml").read_text()
    assert "FEDELTA_POINTS_TILL_TOKEN_SHA256" in manifest
    assert not re.search(r"name: FEDELTA_POINTS_TILL_TOKEN\s*$", manifest, re.MULTILINE)
    stack_sh = (REPO / "deploy/local/stack.sh").read_text()
    assert "FEDELTA_POINTS_TILL_TOKEN_SHA256=" in stack_sh
    assert "FEDELTA_POINTS_TILL_TOKEN=" not in stack_sh


def test_the_test_stack_gives_points_the_hash_only(tmp_path: Path) -> None:
    (tmp_path / "secrets.env").write_text(
        "".join(f"FEDELTA_PG_{name.upper()}_PASSWORD={'x' * 43}\n" for name in ("points", "ingest"))
    )
    stack = Stack(tmp_path, 1, 2, 3, 4, 5)
    env = stack.service_env("points", 8081)
    assert env["FEDELTA_POINTS_TILL_TOKEN_SHA256"] == sha256_hex(TILL_TOKEN)
    assert TILL_TOKEN not in env.values()
    assert stack.service_env("ingest", 8080)["FEDELTA_INGEST_POINTS_TOKEN"] == TILL_TOKEN
