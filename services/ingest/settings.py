from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.auth import SIGNATURE_TOLERANCE_SECONDS
from shared.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FEDELTA_INGEST_", extra="ignore", frozen=True)

    port: int = 8080
    # The program currency: a purchase in any other one is refused at the edge.
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    # How far a POS clock may be from ours: the age of a signature, and how far in the
    # future a reported purchase or refund may be dated.
    max_clock_skew_seconds: int = Field(default=SIGNATURE_TOLERANCE_SECONDS, ge=1, le=3600)


def load_settings() -> IngestSettings:
    return IngestSettings()  # the required fields come from the environment
