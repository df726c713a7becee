"""A `DevEnv` for unit tests that never reach a stack: made-up URLs and tokens."""

from __future__ import annotations

from pathlib import Path

from fedelta_client import DevEnv
from fedelta_client.devenv import SERVICES

FAKE_DEV_ENV = DevEnv(
    ingest_url="http://ingest",
    points_url="http://points",
    tiers_url="http://tiers",
    notifications_url="http://notifications",
    engagement_url="http://engagement",
    insights_url="http://insights",
    web_url="http://web",
    partner_key="fk",
    partner_secret="fs",
    tokens={
        service: {"read": "read", "operate": "operate", "admin": "admin"} for service in SERVICES
    },
    mail_dir=Path("mail"),
    console_user="admin",
    console_password="console-password",
)
