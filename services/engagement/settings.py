from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class EngagementSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FEDELTA_ENGAGEMENT_", extra="ignore", frozen=True)

    port: int = 8084
    # The program's secret the surprise draws are keyed with (HMAC-SHA256; at least 32 bytes,
    # required: docs/engagement.md, "Surprise rewards"). Changing it changes every draw not
    # made yet; an auditor needs it to recompute the draws. Never logged.
    surprise_secret: SecretStr = Field(min_length=32)


def load_settings() -> EngagementSettings:
    return EngagementSettings()  # the required fields come from the environment
