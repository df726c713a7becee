from pathlib import Path

from pydantic_settings import SettingsConfigDict

from services.insights.adapters.program_file import DEFAULT_PROGRAM_FILE
from shared.settings import ServiceSettings


class InsightsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FEDELTA_INSIGHTS_", extra="ignore", frozen=True)

    port: int = 8085
    # The rules' numbers: RFM window, lifecycle thresholds, the six loyalty types
    # (docs/insights.md, "Tuning the rules").
    program_file: Path = DEFAULT_PROGRAM_FILE


def load_settings() -> InsightsSettings:
    return InsightsSettings()  # the required fields come from the environment
