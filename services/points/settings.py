from pathlib import Path

from pydantic_settings import SettingsConfigDict

from services.points.adapters.program_file import DEFAULT_PROGRAM_FILE
from shared.settings import ServiceSettings


class PointsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FEDELTA_POINTS_", extra="ignore", frozen=True)

    port: int = 8081
    program_file: Path = DEFAULT_PROGRAM_FILE


def load_settings() -> PointsSettings:
    return PointsSettings()  # the required fields come from the environment
