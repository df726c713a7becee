import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ExampleSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FEDELTA_EXAMPLE_", extra="ignore", frozen=True)

    port: int = 8099


GOOD = {
    "FEDELTA_EXAMPLE_DATABASE_URL": "postgresql+asyncpg://u:p@127.0.0.1:5432/db",
    "FEDELTA_EXAMPLE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092,127.0.0.1:9093",
    "FEDELTA_EXAMPLE_ADMIN_TOKEN_SHA256": "0123456789abcdef" * 4,
}


def load(monkeypatch: pytest.MonkeyPatch, **changes: str | None) -> ExampleSettings:
    for name, value in {**GOOD, **changes}.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return ExampleSettings()


def test_a_complete_environment_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, FEDELTA_EXAMPLE_LOG_LEVEL="debug")
    assert settings.port == 8099
    assert settings.log_level == "DEBUG"
    assert settings.run_workers is True


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("FEDELTA_EXAMPLE_DATABASE_URL", None, "database_url"),
        ("FEDELTA_EXAMPLE_DATABASE_URL", "postgresql://u:p@h/db", "asyncpg"),
        ("FEDELTA_EXAMPLE_KAFKA_BOOTSTRAP_SERVERS", "localhost", "host:port"),
        ("FEDELTA_EXAMPLE_ADMIN_TOKEN_SHA256", None, "admin_token_sha256"),
        ("FEDELTA_EXAMPLE_ADMIN_TOKEN_SHA256", "an-admin-token-long-enough", "admin_token"),
        ("FEDELTA_EXAMPLE_PORT", "70000", "port"),
        ("FEDELTA_EXAMPLE_LOG_LEVEL", "chatty", "log_level"),
    ],
)
def test_bad_configuration_fails_at_start_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str | None, complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint):
        load(monkeypatch, **{name: value})
