"""Issue 19, generated database passwords: no service's PostgreSQL role has its name for a
password, on the local stack (deploy/local/postgres.sh makes a random one per role, kept in
the owner-only secrets.env, and prints it in the DSN), in the test stack's DSNs, and in the
compose and Kubernetes files (which take them from secrets)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.stack import SERVICES, Stack

REPO = Path(__file__).resolve().parents[3]
POSTGRES_SH = REPO / "deploy" / "local" / "postgres.sh"


def postgres_sh(state_dir: Path, *args: str) -> str:
    env = {**os.environ, "FEDELTA_STATE_DIR": str(state_dir), "FEDELTA_PG_PORT": "23999"}
    done = subprocess.run(
        [str(POSTGRES_SH), *args], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_each_role_gets_a_random_password_kept_owner_only(tmp_path: Path) -> None:
    postgres_sh(tmp_path, "passwords")
    secrets = tmp_path / "secrets.env"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    dsns = {name: urlsplit(postgres_sh(tmp_path, "dsn", name).strip()) for name in SERVICES}
    passwords = {name: dsn.password or "" for name, dsn in dsns.items()}
    for name, dsn in dsns.items():
        assert dsn.username == name
        assert passwords[name] != name, f"{name}'s password is its name"
        assert re.fullmatch(r"[A-Za-z0-9_-]{32,}", passwords[name]), name
    assert len(set(passwords.values())) == len(SERVICES)
    # Kept: made once per state dir, the same on every start.
    postgres_sh(tmp_path, "passwords")
    assert {n: urlsplit(postgres_sh(tmp_path, "dsn", n).strip()).password for n in SERVICES} == (
        passwords
    )
    # And what the test stack connects with is the same.
    stack = Stack(tmp_path, 23999, 1, 2, 3, 4)
    for name in SERVICES:
        assert urlsplit(stack.database_url(name)).password == passwords[name]


def test_credentials_already_in_the_file_are_kept_and_the_missing_added(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("FEDELTA_PARTNER_KEY=fk_x\nFEDELTA_PG_POINTS_PASSWORD=" + "p" * 43 + "\n")
    postgres_sh(tmp_path, "passwords")
    lines = secrets.read_text().splitlines()
    assert lines[:2] == ["FEDELTA_PARTNER_KEY=fk_x", "FEDELTA_PG_POINTS_PASSWORD=" + "p" * 43]
    assert {line.split("=")[0] for line in lines} >= {
        f"FEDELTA_PG_{name.upper()}_PASSWORD" for name in SERVICES
    }


def test_a_dsn_without_a_password_made_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "FEDELTA_STATE_DIR": str(tmp_path), "FEDELTA_PG_PORT": "23999"}
    done = subprocess.run(
        [str(POSTGRES_SH), "dsn", "ingest"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode != 0 and "no password" in done.stderr
    with pytest.raises(RuntimeError, match="FEDELTA_PG_INGEST_PASSWORD"):
        Stack(tmp_path, 23999, 1, 2, 3, 4).database_url("ingest")


def deployment_files() -> list[Path]:
    return [
        REPO / "docker-compose.yml",
        REPO / "deploy" / "docker" / "postgres-init.sh",
        *sorted((REPO / "deploy" / "k8s").rglob("*.yaml")),
        *sorted((REPO / "deploy" / "k8s").rglob("*.env")),
    ]


@pytest.mark.parametrize("path", deployment_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_deployment_file_gives_a_role_its_name_for_a_password(path: Path) -> None:
    text = path.read_text()
    for name in SERVICES:
        assert not re.search(rf"://{name}:{name}@", text), f"{path}: {name}:{name}@ in a URL"
        assert not re.search(rf"PASSWORD\W+['\"]?{name}['\"]?\s*$", text, re.MULTILINE | re.I), (
            f"{path}: {name}'s password is its name"
        )
