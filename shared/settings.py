"""The settings every service has; each service subclasses it with its own env prefix."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.sealing import Keyring

TokenRole = Literal["read", "operate", "admin"]


def _lower_hex(value: str) -> str:
    return value.lower()


# The SHA-256 of a bearer token, 64 hex digits (`printf %s "$TOKEN" | sha256sum`).
TokenHash = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$"), AfterValidator(_lower_hex)]


class ServiceSettings(BaseSettings):
    """Fails fast: a service refuses to start on missing or malformed configuration."""

    # A refused value is never echoed in the error (it may be a secret or a token); the field
    # and the rule are.
    model_config = SettingsConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    database_url: str
    database_pool_size: int = Field(default=20, ge=1, le=100)
    kafka_bootstrap_servers: str
    # Who the service is to the broker (shared.messaging.kafka.KafkaConnection): its own
    # principal, allowed only its own topics (shared.messaging.acls). PLAINTEXT: none.
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    # The service's own credentials, by role: the SHA-256 (hex) of each bearer token, never
    # the token. Two slots per role, so that a token is rotated without downtime: the new
    # one's hash goes into `_next`, the clients move to it, then it becomes the current one.
    admin_token_sha256: TokenHash
    admin_token_sha256_next: TokenHash | None = None
    operate_token_sha256: TokenHash | None = None
    operate_token_sha256_next: TokenHash | None = None
    read_token_sha256: TokenHash | None = None
    read_token_sha256_next: TokenHash | None = None
    # The till scope (points: what ingest calls on a partner's till's behalf), by the SHA-256
    # of the till token, never the token (ingest holds the token itself); `_next` during a
    # rotation, as for the roles. Unset: no till scope.
    till_token_sha256: TokenHash | None = None
    till_token_sha256_next: TokenHash | None = None
    # The web console's credential (services/web holds the token): the admin role, for a
    # person the call names in `Fedelta-Actor` (shared.web.auth.console_actor); `_next`
    # during a rotation. Unset: no console.
    console_token_sha256: TokenHash | None = None
    console_token_sha256_next: TokenHash | None = None
    # The plaintext till token, as services were configured before the hash: read only to
    # refuse it, so that an upgrade that still sets it fails at start, not at a till's call.
    till_token: SecretStr | None = Field(default=None, exclude=True, repr=False)
    host: str = "127.0.0.1"
    # A validator, not Field(ge=, le=): each service redeclares `port` with its own default,
    # which would drop constraints declared here, but validators are inherited by name.
    port: int
    # Where /metrics, /docs and /openapi.json are served instead of `port` (on the same
    # host), which then answers 404 for them (shared.web.internal_port); unset: all on `port`.
    internal_port: int | None = Field(default=None, ge=1, le=65535)
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
    # How long a batch naming a partner not yet known waits for the partner's record before
    # the event is dead-lettered as UnknownPartner (shared.messaging.partners).
    consumer_unknown_partner_wait_seconds: float = Field(default=30.0, ge=0, le=600)
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

    def till_hashes(self) -> tuple[str, ...]:
        """The till token's accepted hashes: the current one and the next, when set."""
        pair = (self.till_token_sha256, self.till_token_sha256_next)
        return tuple(h for h in pair if h is not None)

    def console_hashes(self) -> tuple[str, ...]:
        """The console token's accepted hashes: the current one and the next, when set."""
        pair = (self.console_token_sha256, self.console_token_sha256_next)
        return tuple(h for h in pair if h is not None)

    @model_validator(mode="after")
    def _one_role_per_token(self) -> ServiceSettings:
        every = [h for hashes in self.token_hashes().values() for h in set(hashes)]
        every.extend(set(self.till_hashes()))
        every.extend(set(self.console_hashes()))
        if len(set(every)) != len(every):
            raise ValueError(
                "token hashes: one token is given two roles (each role, the till scope and "
                "the console need tokens of their own)"
            )
        return self

    @model_validator(mode="after")
    def _no_plaintext_till_token(self) -> ServiceSettings:
        if self.till_token is not None:
            raise ValueError(
                "till_token is no longer read: set till_token_sha256 to the SHA-256 (hex) of "
                "the till token instead, and remove till_token (docs/operations.md)"
            )
        return self

    @model_validator(mode="after")
    def _kafka_credentials(self) -> ServiceSettings:
        if self.kafka_security_protocol != "PLAINTEXT" and not (
            self.kafka_username and self.kafka_password
        ):
            raise ValueError(
                f"kafka_security_protocol {self.kafka_security_protocol} needs kafka_username "
                "and kafka_password"
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

    @model_validator(mode="after")
    def _internal_port_apart(self) -> ServiceSettings:
        if self.internal_port == self.port:
            raise ValueError("internal_port must differ from port")
        return self

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("log_level must be DEBUG, INFO, WARNING or ERROR")
        return level


class SealedSecretsSettings(BaseSettings):
    """For a service that keeps secrets it must read back (ingest: partners' signing secrets;
    notifications: webhooks' secrets): stored sealed (`shared.sealing`) under a key kept
    outside the database. Base64 of 32 random bytes; the previous keys (comma-separated)
    still open what they sealed during a rotation (SECURITY.md). Malformed: refused at start."""

    secrets_key: SecretStr | None = None
    secrets_key_previous: SecretStr | None = None

    def keyring(self) -> Keyring | None:
        if self.secrets_key is None:
            return None
        previous = self.secrets_key_previous
        return Keyring.parse(
            self.secrets_key.get_secret_value(),
            None if previous is None else previous.get_secret_value(),
        )

    @model_validator(mode="after")
    def _keys_parse(self) -> SealedSecretsSettings:
        if self.secrets_key is None and self.secrets_key_previous is not None:
            raise ValueError("secrets_key_previous is set but secrets_key is not")
        try:
            self.keyring()
        except ValueError as malformed:
            raise ValueError(f"secrets_key: {malformed}") from None
        return self
