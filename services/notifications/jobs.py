"""The notifications service's time-driven jobs.

The dispatcher sends whatever is due by its clock; these jobs, given the instant they run as
of, make due what waited until then, so that operators and tests can replay a date. Each
remembers the instant on what it released: run again as of the same instant, it changes
nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.notifications.adapters.repositories.jobs import jobs_repository
from services.notifications.domain.model import (
    DEFAULT_WIN_BACK_AFTER,
    WIN_BACK,
    Channel,
    Delivery,
    PurchaseActivity,
    channels_for,
    is_lapsed,
    schedule,
    win_back_cause,
)
from services.notifications.ports import JobsRepository
from shared.clock import Clock
from shared.messaging.events import derived_event_id
from shared.storage.transactions import in_transaction

RELEASE_QUIET_HOURS = "release-quiet-hours"
RETRY_DELIVERIES = "retry-deliveries"
WIN_BACK_JOB = "win-back"


@dataclass(frozen=True)
class ReleaseHeld:
    """Messages held by quiet hours or the daily cap whose wait ended by `as_of`."""

    name: str = RELEASE_QUIET_HOURS

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]:
        released = await in_transaction(
            engine, lambda conn: jobs_repository(conn).release(as_of, held=True)
        )
        return {"as_of": as_of.isoformat(), "released": released}


@dataclass(frozen=True)
class RetryDeliveries:
    """Messages whose last attempt failed and whose backoff ended by `as_of`."""

    name: str = RETRY_DELIVERIES

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]:
        retried = await in_transaction(
            engine, lambda conn: jobs_repository(conn).release(as_of, held=False)
        )
        return {"as_of": as_of.isoformat(), "retried": retried}


@dataclass(frozen=True)
class WinBack:
    """One `win_back` message to each customer without a purchase for `after` by `as_of`;
    the next only once they have bought again and lapsed again. The message's id derives from
    the lapse, and the lapse is marked in the same transaction: a second run changes nothing."""

    clock: Clock
    after: timedelta = DEFAULT_WIN_BACK_AFTER
    name: str = WIN_BACK_JOB

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]:
        now = self.clock.now()

        async def win_back(conn: AsyncConnection) -> tuple[int, int]:
            return await self._win_back(jobs_repository(conn), as_of, now)

        lapsed, scheduled = await in_transaction(engine, win_back)
        return {"as_of": as_of.isoformat(), "lapsed": lapsed, "scheduled": scheduled}

    async def _win_back(
        self, notifications: JobsRepository, as_of: datetime, now: datetime
    ) -> tuple[int, int]:
        """How many customers lapsed, and how many messages were new."""
        lapsed = [
            a
            for a in await notifications.lapsed(as_of, self.after)
            if is_lapsed(a, as_of, self.after)
        ]
        reachable = await notifications.contacts_of([a.customer_id for a in lapsed])
        partners = await notifications.partners_with_webhooks(
            {c.partner_id for c in reachable.values() if c.partner_id}
        )
        scheduled = await notifications.schedule(
            [
                win_back_message(activity, now, channel)
                for activity in lapsed
                for channel in channels_for(reachable.get(activity.customer_id), partners)
            ]
        )
        await notifications.mark_won_back(lapsed)
        return len(lapsed), len(scheduled)


def win_back_message(
    activity: PurchaseActivity, now: datetime, channel: Channel = Channel.EMAIL
) -> Delivery:
    cause = win_back_cause(activity)
    return schedule(
        notification_id=derived_event_id(cause, f"{WIN_BACK}/{channel.value}"),
        customer_id=activity.customer_id,
        channel=channel,
        template=WIN_BACK,
        cause_event_id=derived_event_id(cause, "cause"),
        now=now,
    )
