"""The test stack: real PostgreSQL, Kafka, mail catcher and fake SMS provider, started by the
project's own deploy/local scripts on ports of its own, so it never collides with a `make up`
stack."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import subprocess
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from shared.messaging.connection import KafkaConnection
from shared.sealing import Keyring

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("ingest", "points", "tiers", "notifications", "engagement", "insights", "web")
# The services the web calls, each with its console credential (FEDELTA_WEB_<SERVICE>_TOKEN).
CONSOLE_SERVICES = ("ingest", "points", "tiers", "notifications", "engagement", "insights")
# Each service is configured with the hashes of its tokens. The in-process services of the
# integration tests share these three for convenience (one header per role for all);
# tests/integration/*/test_credentials*.py give a service tokens of its own. The local stack
# (deploy/local/stack.sh) gives every service its own.
ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
OPERATE_TOKEN = "test-operate-token-0123456789abcdef"
READ_TOKEN = "test-read-token-0123456789abcdef"
# Points' till scope, held by ingest (FEDELTA_INGEST_POINTS_TOKEN) and never by a till.
TILL_TOKEN = "test-till-token-0123456789abcdef"
# The web's console credential, one for every service here (the local stack gives each its
# own), and the secret of a receipt's wallet link, shared by ingest and the web.
CONSOLE_TOKEN = "test-console-token-0123456789abcdef"
RECEIPT_SECRET = "test-receipt-secret-0123456789abcdef"
# The console's first staff account (made by the web when it has none).
STAFF_USER = "admin"
STAFF_PASSWORD = "test-staff-password-0123456789"
# The services that seal stored secrets (FEDELTA_<NAME>_SECRETS_KEY, base64 of 32 bytes). The
# stack's key is the one in its secrets.env, shared with the services deploy/local/stack.sh
# starts on it (the end-to-end tests), so that both open what the other sealed; these fixed
# keys were the test stack's first ones and stay readable as its previous keys.
SEALING_SERVICES = ("ingest", "notifications")
PREVIOUS_SECRETS_KEYS = {
    "ingest": base64.b64encode(b"test-ingest-secrets-key-32-bytes").decode(),
    "notifications": base64.b64encode(b"test-notifications-key-32-bytes!").decode(),
}


def sha256_hex(token: str) -> str:
    """What a service is configured with for a token (FEDELTA_<SERVICE>_<ROLE>_TOKEN_SHA256)."""
    return hashlib.sha256(token.encode()).hexdigest()


# The end-to-end pipeline's service processes listen here unless FEDELTA_TEST_SERVICE_PORTS
# (one port per service, in the order of SERVICES) says otherwise: what `make test` gives.
DEFAULT_SERVICE_PORTS = "18080,18081,18082,18083,18084,18085,18086"


def service_ports(environ: Mapping[str, str]) -> dict[str, str]:
    """FEDELTA_<SERVICE>_PORT for each service process of the end-to-end pipeline, as
    deploy/local/stack.sh reads them; a list that is not one port per service is refused by
    name (a list written for fewer services would silently leave one on its default port)."""
    listed = environ.get("FEDELTA_TEST_SERVICE_PORTS") or DEFAULT_SERVICE_PORTS
    ports = [port.strip() for port in listed.split(",")]
    if len(ports) != len(SERVICES) or not all(port.isdigit() for port in ports):
        raise ValueError(
            f"FEDELTA_TEST_SERVICE_PORTS={listed!r}: give {len(SERVICES)} port numbers, one "
            f"per service in this order: {', '.join(SERVICES)}"
        )
    return {
        f"FEDELTA_{name.upper()}_PORT": port for name, port in zip(SERVICES, ports, strict=True)
    }


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
    def kafka(self) -> KafkaConnection:
        """The admin principal (a super user): what tests read and write the broker as."""
        return self.kafka_as("admin")

    def kafka_as(self, principal: str) -> KafkaConnection:
        """The broker as one principal (deploy/local/kafka.sh makes them, with their passwords
        in the state dir's secrets.env). A broker started before it required SASL (its rendered
        properties say PLAINTEXT) is reached without one."""
        plaintext = KafkaConnection(self.kafka_bootstrap_servers)
        password = self.kafka_password(principal)
        return plaintext.as_user(principal, password) if password else plaintext

    def kafka_password(self, principal: str) -> str | None:
        try:
            properties = (self.state_dir / "kafka" / "server.properties").read_text()
            secrets = (self.state_dir / "secrets.env").read_text()
        except OSError:
            return None
        if "\nlisteners=SASL_PLAINTEXT://" not in properties:
            return None
        name = f"FEDELTA_KAFKA_{principal.upper()}_PASSWORD="
        found = [line[len(name) :] for line in secrets.splitlines() if line.startswith(name)]
        return found[-1] if found else None

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
        """As `deploy/local/postgres.sh dsn` prints it: the role's password is the one
        postgres.sh made for this state dir (secrets.env), set on every `infra.sh up`."""
        password = self.database_password(service)
        return (
            f"postgresql+asyncpg://{service}:{password}@127.0.0.1:{self.pg_port}/fedelta_{service}"
        )

    def secrets_key(self, service: str) -> str:
        """The service's key in the stack's secrets.env, made there (as stack.sh would) when
        missing, under the lock the deploy/local scripts take to add to that file."""
        return self.kept_secret(
            f"FEDELTA_{service.upper()}_SECRETS_KEY",
            lambda: base64.b64encode(os.urandom(32)).decode(),
        )

    def kept_secret(self, variable: str, make: Callable[[], str]) -> str:
        """`variable` in the stack's secrets.env, made there by `make` (as stack.sh would)
        when missing, under the lock the deploy/local scripts take to add to that file: the
        in-process services and those stack.sh starts on this stack share it."""
        name = f"{variable}="
        secrets = self.state_dir / "secrets.env"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(f"{secrets}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            lines = secrets.read_text().splitlines() if secrets.exists() else []
            found = [line[len(name) :] for line in lines if line.startswith(name)]
            if found:
                return found[-1]
            key = make()
            descriptor = os.open(secrets, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(descriptor, "a") as file:
                file.write(f"{name}{key}\n")
            return key

    def keyring(self, service: str) -> Keyring:
        """What the service seals and opens its stored secrets with on this stack."""
        env = self.service_env(service, 0)
        prefix = f"FEDELTA_{service.upper()}_"
        return Keyring.parse(env[f"{prefix}SECRETS_KEY"], env[f"{prefix}SECRETS_KEY_PREVIOUS"])

    def sealed_as_stored(self, service: str, partner_id: str, secret: str) -> str:
        """A partner's secret as `service` stores it on this stack, for a test that writes such
        a row itself."""
        if service == "ingest":
            from services.ingest.adapters.sealed_secrets import context
        else:
            from services.notifications.adapters.sealed_secrets import context
        return self.keyring(service).seal(secret, context(partner_id))

    def install_keyrings(self) -> None:
        """What the in-process services' bootstrap installs, for a test that reads partners or
        webhooks through the adapters before any service app of its process started."""
        from services.ingest.adapters import sealed_secrets as ingest_secrets
        from services.notifications.adapters import sealed_secrets as notifications_secrets

        ingest_secrets.use_keyring(self.keyring("ingest"))
        notifications_secrets.use_keyring(self.keyring("notifications"))

    def database_password(self, service: str) -> str:
        name = f"FEDELTA_PG_{service.upper()}_PASSWORD="
        try:
            lines = (self.state_dir / "secrets.env").read_text().splitlines()
        except OSError:
            lines = []
        found = [line[len(name) :] for line in lines if line.startswith(name)]
        if not found:
            raise RuntimeError(
                f"no {name[:-1]} in {self.state_dir / 'secrets.env'}: start the stack's "
                "PostgreSQL with deploy/local/infra.sh up (or postgres.sh start), which makes it"
            )
        return found[-1]

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
        # A migration that seals stored secrets reads the service's key from its environment.
        keys = {k: v for k, v in self.service_env(service, 0).items() if "SECRETS_KEY" in k}
        with mock.patch.dict(os.environ, keys), ThreadPoolExecutor(max_workers=1) as pool:
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
        if (kafka_password := self.kafka_password(service)) is not None:
            env[f"{prefix}KAFKA_SECURITY_PROTOCOL"] = "SASL_PLAINTEXT"
            env[f"{prefix}KAFKA_USERNAME"] = service
            env[f"{prefix}KAFKA_PASSWORD"] = kafka_password
        if service in SEALING_SERVICES:
            env[f"{prefix}SECRETS_KEY"] = self.secrets_key(service)
            env[f"{prefix}SECRETS_KEY_PREVIOUS"] = PREVIOUS_SECRETS_KEYS[service]
        if service == "points":
            env[f"{prefix}TILL_TOKEN_SHA256"] = sha256_hex(TILL_TOKEN)  # the token is ingest's
        if service == "ingest":
            env[f"{prefix}POINTS_TOKEN"] = TILL_TOKEN
        if service == "engagement":  # the key of the surprise draws (as stack.sh makes it)
            env[f"{prefix}SURPRISE_SECRET"] = self.kept_secret(
                "FEDELTA_ENGAGEMENT_SURPRISE_SECRET",
                lambda: base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="),
            )
        if service == "notifications":
            env[f"{prefix}SMTP_HOST"] = "127.0.0.1"
            env[f"{prefix}SMTP_PORT"] = str(self.smtp_port)
            env[f"{prefix}SMS_URL"] = self.sms_url
            env[f"{prefix}SMS_TOKEN"] = "test-sms-token"
        if service in CONSOLE_SERVICES:
            env[f"{prefix}CONSOLE_TOKEN_SHA256"] = sha256_hex(CONSOLE_TOKEN)  # the web's
        if service == "ingest":
            env[f"{prefix}RECEIPT_SECRET"] = RECEIPT_SECRET
        if service == "web":
            env |= web_env(port)
            env["FEDELTA_WEB_FIRST_STAFF_PASSWORD"] = self.staff_password()
        return env

    def staff_password(self) -> str:
        """The console's first account's password on this stack: kept in its secrets.env, so
        that the web in-process (integration tests) and the one stack.sh starts (end to end)
        make the same account, whichever starts first."""
        return self.kept_secret("FEDELTA_WEB_FIRST_STAFF_PASSWORD", lambda: STAFF_PASSWORD)


def web_env(port: int) -> dict[str, str]:
    """The web's own settings on the test stack: the other services where the end-to-end
    pipeline runs them (FEDELTA_TEST_SERVICE_PORTS), its console credential at each, plain
    http (cookies without `Secure`), the first staff account's name and the receipts' secret
    (its password is the stack's own, `Stack.staff_password`)."""
    ports = service_ports(os.environ)
    env = {
        "FEDELTA_WEB_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "FEDELTA_WEB_COOKIE_SECURE": "false",
        "FEDELTA_WEB_FIRST_STAFF_USER": STAFF_USER,
        "FEDELTA_WEB_RECEIPT_SECRET": RECEIPT_SECRET,
    }
    for name in CONSOLE_SERVICES:
        upper = name.upper()
        env[f"FEDELTA_WEB_{upper}_URL"] = f"http://127.0.0.1:{ports[f'FEDELTA_{upper}_PORT']}"
        env[f"FEDELTA_WEB_{upper}_TOKEN"] = CONSOLE_TOKEN
    return env
