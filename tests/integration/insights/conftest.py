"""The insights service in-process on the test stack, for every insights integration
module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.insights.api.app import create_app
from services.insights.settings import InsightsSettings
from tests.support.database import engine_for
from tests.support.services import running, settings_for
from tests.support.stack import Stack


@pytest.fixture(scope="module")
async def settings(stack: Stack) -> InsightsSettings:
    async with engine_for(stack, "insights", pool_size=1):
        pass  # migrated
    return settings_for(InsightsSettings, stack, "insights")


@pytest.fixture(scope="module")
async def client(settings: InsightsSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app, settings) as (_, client):
        yield client


@pytest.fixture(scope="module")
async def engine(stack: Stack, settings: InsightsSettings) -> AsyncIterator[AsyncEngine]:
    async with engine_for(stack, "insights") as engine:
        yield engine
