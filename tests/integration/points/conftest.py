"""The points service in-process on the test stack, for every points integration module: the
running service's client (`points`, once per module) and an engine on its database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.points.api.app import create_app
from services.points.settings import PointsSettings
from tests.support.database import engine_for
from tests.support.services import running, settings_for
from tests.support.stack import Stack


@pytest.fixture(scope="module")
async def points(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    stack.migrate("points")
    settings = settings_for(PointsSettings, stack, "points")
    async with running(create_app, settings) as (_, client):
        yield client


@pytest.fixture
async def engine(stack: Stack, points: httpx.AsyncClient) -> AsyncIterator[AsyncEngine]:
    async with engine_for(stack, "points") as engine:
        yield engine
