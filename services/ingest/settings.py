from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import SealedSecretsSettings, ServiceSettings
from shared.web.auth import SIGNATURE_TOLERANCE_SECONDS
from shared.web.receipt_links import MIN_SECRET_BYTES


class IngestSettings(ServiceSettings, SealedSecretsSettings):
    # Errors name the setting and what is wrong, never its value: several are secrets.
    model_config = SettingsConfigDict(
        env_prefix="FEDELTA_INGEST_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    port: int = 8080
    # Two processes: on two cores one is CPU-bound in the HTTP framework at ~1,500 purchases/s
    # (bench/README.md, "Ingest: profile and figures").
    workers: int = Field(default=2, ge=1, le=32)
    # The program currency: a purchase in any other one is refused at the edge.
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    # How far a POS clock may be from ours: the age of a signature, and how far in the
    # future a reported purchase or refund may be dated.
    max_clock_skew_seconds: int = Field(default=SIGNATURE_TOLERANCE_SECONDS, ge=1, le=3600)
    # How late a purchase or refund may be reported: older ones are refused (422), since they
    # would change a tier today and earn points that have already expired.
    max_purchase_age_days: int = Field(default=30, ge=1, le=3650)
    # How long a partner's credentials are reused from memory without asking the database:
    # the delay before a revoked or replaced API key stops working. 0 asks every time.
    partner_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # A key that belongs to no partner is remembered as unknown this long (one lookup per key
    # per that long), and keys never seen are looked up at most this many times a second per
    # process; past it, a 429 without a lookup (issue 19: a flood of random keys).
    unknown_key_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    unknown_key_lookups_per_second: float = Field(default=20.0, gt=0, le=10_000)
    # Purchases that arrive while the previous group commits share one transaction; this
    # bounds how many, so that one group's statements stay small and its latency short.
    purchase_group_max: int = Field(default=64, ge=1, le=1000)
    # Till calls (balance, redemptions, holds, coupons) are relayed to points over HTTP with
    # the till token, a service credential a till never sees; unset, they answer 503.
    points_url: str = Field(
        default="http://127.0.0.1:8081", max_length=2000, pattern=r"^https?://[^\s/?#]+[^\s?#]*$"
    )
    points_token: SecretStr | None = Field(default=None, min_length=16)
    # How long to wait for a connection to points (then nothing was sent: 503
    # points-unavailable), and for its answer once the call went (then its outcome is unknown:
    # 503 points-outcome-unknown, retry with the same Idempotency-Key).
    points_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    points_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Connections to points per process; calls beyond wait for one (as long as the connect
    # timeout), then answer 503.
    points_connections: int = Field(default=32, ge=1, le=512)
    # What a 503 of a till call asks the till to wait before it retries.
    points_retry_after_seconds: int = Field(default=1, ge=1, le=300)
    # How often each ingest process appends a tombstone of a reserved key to every partition
    # of the customers topic and its dead-letter topic, so that a quiet partition's segment
    # rolls and the cleaner can compact an erased profile (docs/operations.md, *Erasure on
    # Kafka*): at most half of the topics' segment.ms (FEDELTA_TOPIC_MAX_COMPACTION_LAG_MS,
    # 1 day by default).
    quiet_partition_write_seconds: float = Field(default=43_200.0, gt=0, le=43_200.0)
    # A partner's calls per second when its record sets none, for the whole instance (each
    # of the `workers` processes allows its share): far above one till's needs and above
    # bench.ingest_throughput's ~3,500/s from one partner; 429 with Retry-After past it.
    partner_rate_limit_per_second: float = Field(default=10_000.0, gt=0, le=1_000_000)
    # A purchase's answer carries the member wallet's link for its receipt (a QR code the POS
    # prints), signed with the secret web shares (FEDELTA_WEB_RECEIPT_SECRET), when both are
    # set; unset: no link.
    receipt_secret: SecretStr | None = Field(default=None, max_length=1024)
    wallet_url: str | None = Field(
        default=None, max_length=2000, pattern=r"^https?://[^\s/?#]+[^\s?#]*$"
    )

    @field_validator("receipt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"receipt_secret must hold at least {MIN_SECRET_BYTES} bytes")
        return value


def load_settings() -> IngestSettings:
    return IngestSettings()  # the required fields come from the environment
