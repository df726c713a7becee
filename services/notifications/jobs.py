"""The notifications service's time-driven jobs.

The dispatcher sends whatever is due by its clock; these jobs, given the instant they run as
of, make due what waited until then, so that operators and tests can replay a date. Each
remembers the instant on what it released: run again as of the same instant, it changes
nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.adapters.repository import SqlNotificationRepository

RELEASE_QUIET_HOURS = "release-quiet-hours"
RETRY_DELIVERIES = "retry-deliveries"


@dataclass(frozen=True)
class ReleaseHeld:
    """Messages held by quiet hours or the daily cap whose wait ended by `as_of`."""

    name: str = RELEASE_QUIET_HOURS

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]:
        async with engine.begin() as conn:
            released = await SqlNotificationRepository(conn).release(as_of, held=True)
        return {"as_of": as_of.isoformat(), "released": released}


@dataclass(frozen=True)
class RetryDeliveries:
    """Messages whose last attempt failed and whose backoff ended by `as_of`."""

    name: str = RETRY_DELIVERIES

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]:
        async with engine.begin() as conn:
            retried = await SqlNotificationRepository(conn).release(as_of, held=False)
        return {"as_of": as_of.isoformat(), "retried": retried}
