"""The ingest service in-process on the test stack, for every ingest integration module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.ingest.api.app import create_app
from services.ingest.settings import IngestSettings
from tests.support.services import running, settings_for
from tests.support.stack import Stack


@pytest.fixture(scope="module")
def settings(stack: Stack) -> IngestSettings:
    stack.migrate("ingest")
    return settings_for(IngestSettings, stack, "ingest")


@pytest.fixture(scope="module")
async def client(settings: IngestSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app, settings) as (_, client):
        yield client


@pytest.fixture(scope="module")
async def db(stack: Stack) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(stack.database_url("ingest"))
    yield engine
    await engine.dispose()
