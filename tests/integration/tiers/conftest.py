"""The tiers service in-process on the test stack, for every tiers integration module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.tiers.api.app import create_app
from services.tiers.settings import TiersSettings
from tests.support.database import engine_for
from tests.support.services import running, settings_for
from tests.support.stack import Stack
from tests.support.tiers import forget_switched_programs


@pytest.fixture(scope="module")
async def settings(stack: Stack) -> TiersSettings:
    """The tests are written for the configured program: a switched one is forgotten first."""
    async with engine_for(stack, "tiers", pool_size=1) as engine:
        await forget_switched_programs(engine)
    return settings_for(TiersSettings, stack, "tiers")


@pytest.fixture(scope="module")
async def client(settings: TiersSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app, settings) as (_, client):
        yield client


@pytest.fixture(scope="module")
async def engine(stack: Stack, settings: TiersSettings) -> AsyncIterator[AsyncEngine]:
    async with engine_for(stack, "tiers") as engine:
        yield engine
