"""The test stack: real PostgreSQL, Kafka, mail catcher and fake SMS provider, started by the
project's own deploy/local scripts on ports of its own, so it never collides with a `make up`
stack."""

from __future__ import annotations

import hashlib
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("ingest", "points", "tiers", "notifications")
# Each service is configured with the hashes of its tokens. The in-process services of the
# integration tests share these three for convenience (one header per role for all four);
# tests/integration/*/test_credentials*.py give a service tokens of its own. The local stack
# (deploy/local/stack.sh) gives every service its own.
ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
OPERATE_TOKEN = "test-operate-token-0123456789abcdef"
READ_TOKEN = "test-read-token-0123456789abcdef"
# Points' till scope, held by ingest (FEDELTA_INGEST_POINTS_TOKEN) and never by a till.
TILL_TOKEN = "test-till-token-0123456789abcdef"


def sha256_hex(token: str) -> str:
    """What a service is configured with for a token (FEDELTA_<SERVICE>_<ROLE>_TOKEN_SHA256)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Stack:
    state_dir: Path
    pg_port: int
    kafka_port: int
    kafka_controller_port: int
    smtp_port: int
    sms_port: int

    @classmethod
    def from_env(cls) -> Stack:
        """Defaults suit `make test`; FEDELTA_TEST_* variables let runs share one machine."""
        env = os.environ
        return cls(
            state_dir=Path(env.get("FEDELTA_TEST_STATE_DIR", REPO / ".fedelta" / "test")),
            pg_port=int(env.get("FEDELTA_TEST_PG_PORT", "15442")),
            kafka_port=int(env.get("FEDELTA_TEST_KAFKA_PORT", "19192")),
            kafka_controller_port=int(env.get("FEDELTA_TEST_KAFKA_CONTROLLER_PORT", "19193")),
            smtp_port=int(env.get("FEDELTA_TEST_SMTP_PORT", "10026")),
            # Next to the SMTP port unless given: runs that set their own SMTP port get an SMS
            # port of their own too (10027 for `make test`).
            sms_port=int(
                env.get("FEDELTA_TEST_SMS_PORT")
                or int(env.get("FEDELTA_TEST_SMTP_PORT", "10026")) + 1
            ),
        )

    @property
    def kafka_bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def mail_dir(self) -> Path:
        return self.state_dir / "mail"

    @property
    def sms_dir(self) -> Path:
        return self.state_dir / "sms"

    @property
    def sms_url(self) -> str:
        return f"http://127.0.0.1:{self.sms_port}/v1/messages"

    def database_url(self, service: str) -> str:
        return (
            f"postgresql+asyncpg://{service}:{service}@127.0.0.1:{self.pg_port}/fedelta_{service}"
        )

    def script_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "FEDELTA_STATE_DIR": str(self.state_dir),
            "FEDELTA_PG_PORT": str(self.pg_port),
            "FEDELTA_KAFKA_PORT": str(self.kafka_port),
            "FEDELTA_KAFKA_CONTROLLER_PORT": str(self.kafka_controller_port),
            "FEDELTA_SMTP_PORT": str(self.smtp_port),
            "FEDELTA_MAIL_DIR": str(self.mail_dir),
            "FEDELTA_SMS_PORT": str(self.sms_port),
            "FEDELTA_SMS_DIR": str(self.sms_dir),
        }

    def run(self, script: str, *args: str, env: dict[str, str] | None = None) -> None:
        """One of deploy/local's scripts on this stack (with `env`, if given, instead of
        `script_env()`: the e2e pipeline adds its service ports to it)."""
        subprocess.run(
            [str(REPO / "deploy" / "local" / script), *args],
            env=self.script_env() if env is None else env,
            check=True,
        )

    def migrate(self, service: str) -> None:
        """Brings one service's database to its newest migration, as `make up` does.

        On a thread of its own: alembic runs its own event loop, and a test's may be running."""
        from shared.storage.migrations import upgrade_to_head

        migrations = REPO / "services" / service / "migrations"
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(upgrade_to_head, migrations, self.database_url(service)).result()

    def service_env(self, service: str, port: int) -> dict[str, str]:
        """The environment a service process of this stack runs with."""
        prefix = f"FEDELTA_{service.upper()}_"
        env = {
            f"{prefix}DATABASE_URL": self.database_url(service),
            f"{prefix}KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            f"{prefix}ADMIN_TOKEN_SHA256": sha256_hex(ADMIN_TOKEN),
            f"{prefix}OPERATE_TOKEN_SHA256": sha256_hex(OPERATE_TOKEN),
            f"{prefix}READ_TOKEN_SHA256": sha256_hex(READ_TOKEN),
            f"{prefix}PORT": str(port),
            f"{prefix}CONSUMER_RETRY_BACKOFF_SECONDS": "0.05",
        }
        if service == "points":
            env[f"{prefix}TILL_TOKEN"] = TILL_TOKEN
        if service == "ingest":
            env[f"{prefix}POINTS_TOKEN"] = TILL_TOKEN
        if service == "notifications":
            env[f"{prefix}SMTP_HOST"] = "127.0.0.1"
            env[f"{prefix}SMTP_PORT"] = str(self.smtp_port)
            env[f"{prefix}SMS_URL"] = self.sms_url
            env[f"{prefix}SMS_TOKEN"] = "test-sms-token"
        return env
