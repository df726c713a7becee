from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

# The services the web calls, each with a URL and the console credential web holds there.
CALLED = ("ingest", "points", "tiers", "notifications", "engagement", "insights")


class WebSettings(ServiceSettings):
    """The web: a backend-for-frontend that calls the other services' APIs with a console
    credential at each (its calls name the person acting in `Fedelta-Actor`)."""

    model_config = SettingsConfigDict(env_prefix="FEDELTA_WEB_", extra="ignore", frozen=True)

    port: int = 8086
    # Where members and staff reach the web: the base of the links it emails.
    public_url: str = Field(default="http://127.0.0.1:8086", pattern=r"^https?://[^\s]{1,200}$")
    # Session and CSRF cookies `Secure` (the local stack over plain http turns it off).
    cookie_secure: bool = True
    ingest_url: str = "http://127.0.0.1:8080"
    points_url: str = "http://127.0.0.1:8081"
    tiers_url: str = "http://127.0.0.1:8082"
    notifications_url: str = "http://127.0.0.1:8083"
    engagement_url: str = "http://127.0.0.1:8084"
    insights_url: str = "http://127.0.0.1:8085"
    ingest_token: SecretStr
    points_token: SecretStr
    tiers_token: SecretStr
    notifications_token: SecretStr
    engagement_token: SecretStr
    insights_token: SecretStr
    # The staff account made at start when there is none (the local stack writes it to
    # .fedelta/dev.env as FEDELTA_CONSOLE_USER / FEDELTA_CONSOLE_PASSWORD).
    first_staff_user: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$")
    first_staff_password: SecretStr | None = Field(default=None, min_length=12)
    # Shared with ingest: the receipt's QR link (`wallet_url`) is signed with it.
    receipt_secret: SecretStr = Field(min_length=32)
    # How long a signed-in session lasts without use, and at most.
    session_idle_minutes: int = Field(default=30, ge=5, le=24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=24 * 30)

    def url_of(self, service: str) -> str:
        url: str = getattr(self, f"{service}_url")
        return url.rstrip("/")

    def token_of(self, service: str) -> str:
        token: SecretStr = getattr(self, f"{service}_token")
        return token.get_secret_value()


def load_settings() -> WebSettings:
    return WebSettings()  # the required fields come from the environment
