"""A service run in-process with its real lifespan (consumer, relay) against the test stack."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar
from unittest import mock

import httpx
from fastapi import FastAPI

from shared.settings import ServiceSettings
from tests.support.stack import ADMIN_TOKEN, OPERATE_TOKEN, READ_TOKEN, Stack

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
OPERATOR = {"Authorization": f"Bearer {OPERATE_TOKEN}"}
READER = {"Authorization": f"Bearer {READ_TOKEN}"}


S = TypeVar("S", bound=ServiceSettings)


def settings_for(settings_class: type[S], stack: Stack, service: str, **overrides: str) -> S:
    env = stack.service_env(service, port=18000)
    prefix = f"FEDELTA_{service.upper()}_"
    env.update({f"{prefix}{name.upper()}": value for name, value in overrides.items()})
    with mock.patch.dict(os.environ, env):
        return settings_class()


@asynccontextmanager
async def running(
    create_app: Callable[[ServiceSettings], FastAPI], settings: ServiceSettings
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Runs the app's lifespan (so its workers consume and relay) and a client for its API."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield app, client
