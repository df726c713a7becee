"""The notifications service's time-driven jobs.

The dispatcher sends whatever is due by its clock; these jobs, given the instant they run as
of, make due what waited until then, so that operators and tests can replay a date. Each
remembers the instant on what it released: run again as of the same instant, it changes
nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
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


# Where the first chunk of lapsed customers starts: before every one.
FIRST_LAPSE: tuple[datetime, str] = (datetime(1, 1, 1, tzinfo=UTC), "")


@dataclass(frozen=True)
class WinBackChunk:
    last_key: tuple[datetime, str] | None  # where the next chunk starts; None: none was left
    taken: int  # customers read
    lapsed: int
    scheduled: int


@dataclass(frozen=True)
class WinBack:
    """One `win_back` message to each customer without a purchase for `after` by `as_of`;
    the next only once they have bought again and lapsed again. The message's id derives from
    the lapse, and the lapse is marked in the same transaction: a second run changes nothing.
    The customers are taken `chunk_size` at a time, one transaction each."""

    clock: Clock
    after: timedelta = DEFAULT_WIN_BACK_AFTER
    name: str = WIN_BACK_JOB
    chunk_size: int = 1000
    repository: Callable[[AsyncConnection], JobsRepository] = jobs_repository

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]:
        after_key, lapsed, scheduled = FIRST_LAPSE, 0, 0
        while True:
            chunk = partial(self._win_back_chunk, as_of=as_of, after_key=after_key)
            done: WinBackChunk = await in_transaction(engine, chunk)
            lapsed += done.lapsed
            scheduled += done.scheduled
            if done.last_key is None or done.taken < self.chunk_size:
                break
            after_key = done.last_key
        return {"as_of": as_of.isoformat(), "lapsed": lapsed, "scheduled": scheduled}

    async def _win_back_chunk(
        self, conn: AsyncConnection, as_of: datetime, after_key: tuple[datetime, str]
    ) -> WinBackChunk:
        """The next chunk's win-backs: scheduled, and the lapses marked, in `conn`'s
        transaction."""
        notifications, now = self.repository(conn), self.clock.now()
        taken = await notifications.lapsed(
            as_of, self.after, after_key=after_key, limit=self.chunk_size
        )
        lapsed = [a for a in taken if is_lapsed(a, as_of, self.after)]
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
        last_key = (taken[-1].last_purchase_at, taken[-1].customer_id) if taken else None
        return WinBackChunk(last_key, len(taken), len(lapsed), len(scheduled))


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
