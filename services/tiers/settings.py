from pathlib import Path

from pydantic_settings import SettingsConfigDict

from services.tiers.adapters.program_file import DEFAULT_PROGRAM_FILE
from shared.settings import ServiceSettings


class TiersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FEDELTA_TIERS_", extra="ignore", frozen=True)

    port: int = 8082
    program_file: Path = DEFAULT_PROGRAM_FILE


def load_settings() -> TiersSettings:
    return TiersSettings()  # the required fields come from the environment
