"""The notifications service in-process on the test stack, for every notifications
integration module: each module says how it is configured (its `settings` fixture), and
gets the running service's client and an engine on its database from here."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.api.app import create_app
from services.notifications.settings import NotificationsSettings
from tests.support.database import engine_for
from tests.support.services import running
from tests.support.stack import Stack


@pytest_asyncio.fixture(scope="module")
async def client(settings: NotificationsSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app, settings) as (_, client):
        yield client


@pytest_asyncio.fixture(scope="module")
async def database(stack: Stack) -> AsyncIterator[AsyncEngine]:
    # A test's own consumer and two claiming transactions at once need a few connections.
    async with engine_for(stack, "notifications", pool_size=5) as engine:
        yield engine
