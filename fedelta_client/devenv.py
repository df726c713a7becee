"""Where a local stack is and how to talk to it: `.fedelta/dev.env` (written by `make up`), the
file in FEDELTA_DEV_ENV, or the same variables in the environment (which win). A partner
integrator's own code passes URLs and credentials to the clients instead.

Every service has tokens of its own, by role (`read`, `operate`, `admin`): dev.env holds
them as FEDELTA_<SERVICE>_<ROLE>_TOKEN (the services themselves know only their hashes). The
web (the member wallet and the program console) is for browsers: its address is FEDELTA_WEB_URL
and the console's first staff account FEDELTA_CONSOLE_USER / FEDELTA_CONSOLE_PASSWORD."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DEV_ENV = REPO / ".fedelta" / "dev.env"
SERVICES = ("ingest", "points", "tiers", "notifications", "engagement", "insights", "web")
Role = Literal["read", "operate", "admin"]
ROLES: tuple[Role, ...] = ("read", "operate", "admin")


def token_variable(service: str, role: Role) -> str:
    """Where dev.env keeps a service's token of a role: FEDELTA_POINTS_ADMIN_TOKEN."""
    return f"FEDELTA_{service.upper()}_{role.upper()}_TOKEN"


class DevEnvError(SystemExit):
    """The environment is missing or incomplete: a message for the operator, exit status 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments skipped, optional quotes removed."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip().removeprefix("export ").strip()] = value
    return values


def load_values(
    path: Path | None = None, environ: Mapping[str, str] | None = None
) -> tuple[Path, dict[str, str]]:
    """The file's variables with the environment's FEDELTA_* and KAFKA_* over them (a
    variable set by hand is meant), and which file that was."""
    environ = os.environ if environ is None else environ
    if path is None:
        path = Path(environ.get("FEDELTA_DEV_ENV", DEFAULT_DEV_ENV))
    values = read_env_file(path) if path.exists() else {}
    values |= {k: v for k, v in environ.items() if k.startswith(("FEDELTA_", "KAFKA_"))}
    return path, values


def kafka_bootstrap_servers(environ: Mapping[str, str] | None = None) -> str:
    """Enough for the commands that talk to Kafka only (topics, dlq)."""
    path, values = load_values(None, environ)
    servers = values.get("KAFKA_BOOTSTRAP_SERVERS") or values.get("FEDELTA_KAFKA_BOOTSTRAP_SERVERS")
    if not servers:
        raise DevEnvError(
            f"KAFKA_BOOTSTRAP_SERVERS is set neither in {path} nor in the environment: start "
            "the stack with `make up` or set it"
        )
    return servers


@dataclass(frozen=True)
class DevEnv:
    ingest_url: str
    points_url: str
    tiers_url: str
    notifications_url: str
    engagement_url: str
    insights_url: str
    web_url: str
    partner_key: str
    partner_secret: str
    # service -> role -> bearer token: a token of one service is worthless at another.
    tokens: Mapping[str, Mapping[Role, str]]
    mail_dir: Path
    partner_id: str = "demo"
    kafka_bootstrap_servers: str | None = None
    # FEDELTA_<SERVICE>_DATABASE_URL, for `fedelta migrate`; absent ones are simply missing.
    database_urls: Mapping[str, str] = field(default_factory=dict)
    # The console's first staff account; absent from a dev.env written before the web.
    console_user: str | None = None
    console_password: str | None = field(default=None, repr=False)

    @classmethod
    def load(cls, path: Path | None = None, environ: Mapping[str, str] | None = None) -> DevEnv:
        path, values = load_values(path, environ)
        required = (
            "FEDELTA_INGEST_URL",
            "FEDELTA_POINTS_URL",
            "FEDELTA_TIERS_URL",
            "FEDELTA_NOTIFICATIONS_URL",
            "FEDELTA_ENGAGEMENT_URL",
            "FEDELTA_INSIGHTS_URL",
            "FEDELTA_WEB_URL",
            "FEDELTA_PARTNER_KEY",
            "FEDELTA_PARTNER_SECRET",
            *(token_variable(service, role) for service in SERVICES for role in ROLES),
        )
        missing = [name for name in required if not values.get(name)]
        if missing:
            where = f"{path} not found" if not path.exists() else f"{path} lacks them"
            raise DevEnvError(
                f"{where} and the environment does not set {', '.join(missing)}: start the "
                "stack with `make up` (it writes .fedelta/dev.env) or set FEDELTA_DEV_ENV"
            )
        return cls(
            ingest_url=values["FEDELTA_INGEST_URL"].rstrip("/"),
            points_url=values["FEDELTA_POINTS_URL"].rstrip("/"),
            tiers_url=values["FEDELTA_TIERS_URL"].rstrip("/"),
            notifications_url=values["FEDELTA_NOTIFICATIONS_URL"].rstrip("/"),
            engagement_url=values["FEDELTA_ENGAGEMENT_URL"].rstrip("/"),
            insights_url=values["FEDELTA_INSIGHTS_URL"].rstrip("/"),
            web_url=values["FEDELTA_WEB_URL"].rstrip("/"),
            partner_key=values["FEDELTA_PARTNER_KEY"],
            partner_secret=values["FEDELTA_PARTNER_SECRET"],
            tokens={
                service: {role: values[token_variable(service, role)] for role in ROLES}
                for service in SERVICES
            },
            mail_dir=Path(values.get("FEDELTA_MAIL_DIR", REPO / ".fedelta" / "mail")),
            partner_id=values.get("FEDELTA_PARTNER_ID", "demo"),
            kafka_bootstrap_servers=values.get("KAFKA_BOOTSTRAP_SERVERS")
            or values.get("FEDELTA_KAFKA_BOOTSTRAP_SERVERS"),
            database_urls={
                service: values[f"FEDELTA_{service.upper()}_DATABASE_URL"]
                for service in SERVICES
                if values.get(f"FEDELTA_{service.upper()}_DATABASE_URL")
            },
            console_user=values.get("FEDELTA_CONSOLE_USER") or None,
            console_password=values.get("FEDELTA_CONSOLE_PASSWORD") or None,
        )

    def service_url(self, service: str) -> str:
        urls = {
            "ingest": self.ingest_url,
            "points": self.points_url,
            "tiers": self.tiers_url,
            "notifications": self.notifications_url,
            "engagement": self.engagement_url,
            "insights": self.insights_url,
            "web": self.web_url,
        }
        if service not in urls:
            raise DevEnvError(f"unknown service {service!r}: one of {', '.join(SERVICES)}")
        return urls[service]

    @property
    def wallet_sign_in_url(self) -> str:
        """The member wallet's sign-in page (a link by email, or a receipt's QR)."""
        return f"{self.web_url}/wallet/sign-in"

    @property
    def console_url(self) -> str:
        """The program console, for staff (FEDELTA_CONSOLE_USER signs in first)."""
        return f"{self.web_url}/console"

    def token(self, service: str, role: Role) -> str:
        """The service's bearer token of that role."""
        self.service_url(service)  # an unknown service is named
        return self.tokens[service][role]

    def tokens_of(self, role: Role) -> dict[str, str]:
        """Every service's token of that role, by service (what an InternalClient takes)."""
        return {service: self.tokens[service][role] for service in SERVICES}

    def require_kafka(self) -> str:
        if not self.kafka_bootstrap_servers:
            raise DevEnvError("KAFKA_BOOTSTRAP_SERVERS is not set (dev.env or the environment)")
        return self.kafka_bootstrap_servers
