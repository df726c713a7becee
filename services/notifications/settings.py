from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.notifications.domain.unsubscribe import derived_secret
from shared.settings import SealedSecretsSettings, ServiceSettings

# HH:MM on a 24-hour clock.
WALL_CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class NotificationsSettings(ServiceSettings, SealedSecretsSettings):
    model_config = SettingsConfigDict(
        env_prefix="FEDELTA_NOTIFICATIONS_", extra="ignore", frozen=True
    )

    port: int = 8083
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=10025, ge=1, le=65535)
    smtp_from: str = "Fedelta <no-reply@fedelta.localhost>"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    # SMTP connections kept open by each instance, each carrying one message at a time.
    smtp_connections: int = Field(default=4, ge=1, le=64)
    dispatch_interval_seconds: float = Field(default=0.2, gt=0)
    # Messages claimed, decided and recorded per transaction: a crash between a server's
    # acceptance and the commit sends at most this many again.
    dispatch_batch_size: int = Field(default=50, ge=1, le=1000)
    # Sends of a batch in flight at once (SMTP is bounded by smtp_connections too; the SMS
    # provider and the partners' webhooks get at most this many connections).
    dispatch_concurrency: int = Field(default=8, ge=1, le=256)
    max_delivery_attempts: int = Field(default=5, ge=1)
    retry_backoff_seconds: float = Field(default=30.0, gt=0)
    retry_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    contact_wait_minutes: float = Field(default=10.0, ge=0)
    # Never harass: the default quiet hours (the customer's own preferences replace them) and
    # how many messages a customer gets at most in a day of their time zone.
    quiet_hours_start: str = Field(default="21:00", pattern=WALL_CLOCK_PATTERN)
    quiet_hours_end: str = Field(default="08:00", pattern=WALL_CLOCK_PATTERN)
    daily_cap: int = Field(default=3, ge=1, le=100)
    # The key of the unsubscribe tokens in every email; derived from the admin token's hash
    # when unset (so rotating that token changes it: set this in production). Changing it
    # invalidates the links in the emails already sent.
    unsubscribe_secret: SecretStr | None = Field(default=None, min_length=16)
    # Where customers reach this service: the unsubscribe links in the emails point here.
    # Printable ASCII and bounded, so List-Unsubscribe is one plain header line (smtp.py).
    public_url: str = Field(
        default="http://127.0.0.1:8083", max_length=200, pattern=r"^https?://[!-.0-~][!-~]*$"
    )
    # Points earned within this many minutes of the first go out as one digest message.
    points_digest_window_minutes: float = Field(default=10.0, ge=0, le=1440)
    # Expiry warnings (points warns per lot) go out as one message per customer and window of
    # this many days of their time zone (1: per day), once the window's lots are all warned of:
    # held past the last lot's own warning time by this long, points' jobs interval and more.
    expiry_warning_window_days: int = Field(default=1, ge=1, le=31)
    expiry_warning_hold_minutes: float = Field(default=65.0, ge=0, le=1440)
    # A member is invited to give feedback this many hours after a purchase
    # (domain/feedback.py); 0: no invitation.
    feedback_request_delay_hours: float = Field(default=0.0, ge=0, le=720)
    # A customer without a purchase for this many days gets one win-back message per lapse.
    win_back_days: int = Field(default=90, ge=1, le=3650)
    # A customer first seen through a profile change (their enrolment compacted away) is
    # welcomed only when enrolled within this many days of the change: a replay of old
    # history must not welcome long-standing customers.
    welcome_window_days: int = Field(default=7, ge=0, le=3650)
    # The program's currency (ISO 4217), which the amounts in the events are in.
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    # The SMS provider: messages are POSTed as JSON to this URL with the token as a bearer
    # token. Unset, SMS messages are suppressed ("no sms provider configured").
    sms_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://[^\s/]+\S*$")
    sms_token: SecretStr | None = Field(default=None, min_length=1)
    sms_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Webhook hosts trusted as they are (comma-separated, e.g. "127.0.0.1,localhost"): plain
    # http allowed and their addresses not checked. Only for the local stack's and tests' own
    # receivers: every other webhook is https to public addresses (domain/webhook_urls.py).
    webhook_allow_hosts: str = Field(
        default="", max_length=2000, pattern=r"^[A-Za-z0-9.:\[\],\- ]*$"
    )
    # Points, where a coupon's code is read (GET /v1/coupons/{id}) when its message goes out,
    # with points' read token. Without the token, coupon messages wait (retried) until it is
    # set or the coupon expires.
    points_url: str = Field(
        default="http://127.0.0.1:8081", max_length=2000, pattern=r"^https?://[^\s/]+\S*$"
    )
    points_token: SecretStr | None = Field(default=None, min_length=1)
    points_timeout_seconds: float = Field(default=5.0, gt=0, le=120)


def unsubscribe_key(settings: NotificationsSettings) -> bytes:
    if settings.unsubscribe_secret is not None:
        return settings.unsubscribe_secret.get_secret_value().encode()
    return derived_secret(settings.admin_token_sha256.encode())


def load_settings() -> NotificationsSettings:
    return NotificationsSettings()  # the required fields come from the environment
