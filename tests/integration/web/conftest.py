"""The web in-process on the test stack (its own database; the other services are not called
by what these tests do)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.web.api.app import create_app
from services.web.settings import WebSettings
from tests.support.database import engine_for
from tests.support.services import running, settings_for
from tests.support.stack import Stack


@pytest.fixture(scope="module")
async def settings(stack: Stack) -> WebSettings:
    async with engine_for(stack, "web", pool_size=1):
        pass  # migrated
    return settings_for(WebSettings, stack, "web")


@pytest.fixture(scope="module")
async def web(settings: WebSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app, settings) as (_, client):
        yield client
