"""The settings every service has; each service subclasses it with its own env prefix."""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TokenRole = Literal["read", "operate", "admin"]


def _lower_hex(value: str) -> str:
    return value.lower()


# The SHA-256 of a bearer token, 64 hex digits (`printf %s "$TOKEN" | sha256sum`).
TokenHash = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$"), AfterValidator(_lower_hex)]


class ServiceSettings(BaseSettings):
    """Fails fast: a service refuses to start on missing or malformed configuration."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    database_url: str
    database_pool_size: int = Field(default=20, ge=1, le=100)
    kafka_bootstrap_servers: str
    # The service's own credentials, by role: the SHA-256 (hex) of each bearer token, never
    # the token. Two slots per role, so that a token is rotated without downtime: the new
    # one's hash goes into `_next`, the clients move to it, then it becomes the current one.
    admin_token_sha256: TokenHash
    admin_token_sha256_next: TokenHash | None = None
    operate_token_sha256: TokenHash | None = None
    operate_token_sha256_next: TokenHash | None = None
    read_token_sha256: TokenHash | None = None
    read_token_sha256_next: TokenHash | None = None
    # The till scope (points: what ingest calls on a partner's till's behalf); unset: none.
    till_token: SecretStr | None = None
    host: str = "127.0.0.1"
    # A validator, not Field(ge=, le=): each service redeclares `port` with its own default,
    # which would drop constraints declared here, but validators are inherited by name.
    port: int
    log_level: str = "INFO"
    # The largest request body accepted; a larger one is refused with 413 before it is read.
    max_body_bytes: int = Field(default=65536, ge=1024, le=16 * 1024 * 1024)
    # uvicorn worker processes. Each is a complete instance (its own pool, relay and
    # consumer), so the database pool size is per worker.
    workers: int = Field(default=1, ge=1, le=32)
    # The API process also runs the consumer and outbox relay unless told otherwise,
    # so that one process per service is a complete service.
    run_workers: bool = True
    consumer_max_attempts: int = Field(default=5, ge=1)
    consumer_retry_backoff_seconds: float = Field(default=0.2, gt=0)
    # Records one poll may hand over (one transaction): large enough for set-based statements
    # to pay off, small enough that a batch stays far inside max.poll.interval.ms.
    consumer_batch_max_records: int = Field(default=1000, ge=1, le=10_000)
    # The relay wakes when an outbox INSERT commits (LISTEN/NOTIFY); this poll is the fallback.
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    outbox_batch_size: int = Field(default=1000, ge=1, le=10_000)
    # Inbox claims and kept idempotency keys older than this are purged. It must be longer
    # than the topics' retention, so that a redelivered event is still recognised.
    retention_days: int = Field(default=30, ge=1)
    # How often each instance tries the service's jobs (one instance at a time runs each).
    jobs_interval_seconds: float = Field(default=3600.0, gt=0)

    def token_hashes(self) -> dict[TokenRole, tuple[str, ...]]:
        """Each role's accepted token hashes: the current one and the next, when set."""
        slots: dict[TokenRole, tuple[str | None, str | None]] = {
            "read": (self.read_token_sha256, self.read_token_sha256_next),
            "operate": (self.operate_token_sha256, self.operate_token_sha256_next),
            "admin": (self.admin_token_sha256, self.admin_token_sha256_next),
        }
        return {role: tuple(h for h in pair if h is not None) for role, pair in slots.items()}

    @model_validator(mode="after")
    def _one_role_per_token(self) -> ServiceSettings:
        every = [h for hashes in self.token_hashes().values() for h in set(hashes)]
        if self.till_token is not None:
            every.append(hashlib.sha256(self.till_token.get_secret_value().encode()).hexdigest())
        if len(set(every)) != len(every):
            raise ValueError(
                "token hashes: one token is given two roles (each role and the till scope "
                "need tokens of their own)"
            )
        return self

    @field_validator("database_url")
    @classmethod
    def _asyncpg_url(cls, value: str) -> str:
        if not value.startswith("postgresql+asyncpg://"):
            raise ValueError("database_url must be a postgresql+asyncpg:// URL")
        return value

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _host_port_list(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"kafka_bootstrap_servers: {server!r} is not host:port")
        return value

    @field_validator("port")
    @classmethod
    def _tcp_port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError("port must be between 1 and 65535")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("log_level must be DEBUG, INFO, WARNING or ERROR")
        return level
