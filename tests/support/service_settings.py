"""What each service reads from its environment, derived from its settings class, so that the
deployment files (docker-compose.yml, deploy/k8s/) are checked against the code, not a list."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pydantic import SecretStr
from pydantic_settings import BaseSettings
from pytest import MonkeyPatch

from services.engagement.settings import EngagementSettings
from services.ingest.settings import IngestSettings
from services.insights.settings import InsightsSettings
from services.notifications.settings import NotificationsSettings
from services.points.settings import PointsSettings
from services.tiers.settings import TiersSettings
from services.web.settings import WebSettings

SETTINGS_CLASSES: dict[str, type[BaseSettings]] = {
    "ingest": IngestSettings,
    "points": PointsSettings,
    "tiers": TiersSettings,
    "notifications": NotificationsSettings,
    "engagement": EngagementSettings,
    "insights": InsightsSettings,
    "web": WebSettings,
}


@dataclass(frozen=True)
class Setting:
    env: str
    field: str
    required: bool
    secret: bool
    default: object


def settings_of(service: str) -> list[Setting]:
    cls = SETTINGS_CLASSES[service]
    prefix = str(cls.model_config.get("env_prefix", ""))
    return [
        Setting(
            env=f"{prefix}{name}".upper(),
            field=name,
            required=info.is_required(),
            # A token's hash is kept secret too (what a service compares tokens against).
            secret=_is_secret(info.annotation)
            or name == "database_url"
            or name.endswith(("_token_sha256", "_token_sha256_next")),
            default=None if info.is_required() else info.default,
        )
        for name, info in cls.model_fields.items()
    ]


def env_names(service: str) -> set[str]:
    return {setting.env for setting in settings_of(service)}


def required_env(service: str) -> set[str]:
    return {setting.env for setting in settings_of(service) if setting.required}


def default_port(service: str) -> int:
    port = SETTINGS_CLASSES[service].model_fields["port"].default
    assert isinstance(port, int)
    return port


def _is_secret(annotation: object) -> bool:
    return annotation is SecretStr or "SecretStr" in repr(annotation)


def load_with(service: str, env: dict[str, str], monkeypatch: MonkeyPatch) -> BaseSettings:
    """The service's settings as it would load them from exactly `env` (its own variables)."""
    prefix = str(SETTINGS_CLASSES[service].model_config.get("env_prefix", ""))
    for name in list(os.environ):
        if name.upper().startswith(prefix):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return SETTINGS_CLASSES[service]()
