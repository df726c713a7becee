"""The engagement service in-process on the test stack, for every engagement integration
module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.engagement.api.app import create_app
from services.engagement.settings import EngagementSettings
from tests.support.database import engine_for
from tests.support.services import running, settings_for
from tests.support.stack import Stack


@pytest.fixture(scope="module")
async def settings(stack: Stack) -> EngagementSettings:
    async with engine_for(stack, "engagement", pool_size=1):
        pass  # migrated
    return settings_for(EngagementSettings, stack, "engagement")


@pytest.fixture(scope="module")
async def client(settings: EngagementSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app, settings) as (_, client):
        yield client


@pytest.fixture(scope="module")
async def engine(stack: Stack, settings: EngagementSettings) -> AsyncIterator[AsyncEngine]:
    async with engine_for(stack, "engagement") as engine:
        yield engine
