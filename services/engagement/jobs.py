"""The engagement jobs: `birthday-rewards` grants the configured birthday reward to each member
whose birthday it is as of the instant, in their own time zone, once per member and year.

It works through the members due in chunks (keyset pagination on the member id), one short
transaction per chunk (grants and outbox together), so a busy day never holds locks for long;
run again as of the same instant it finds nothing left to grant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.engagement.adapters import tables
from services.engagement.adapters.repositories.birthdays import birthday_repository
from services.engagement.domain.birthdays import (
    BirthdayReward,
    Celebrated,
    celebrated_at,
    possible_birthdays,
)
from services.engagement.handlers import BirthdayContext, BirthdaysDone, grant_birthdays
from shared.clock import Clock
from shared.messaging.outbox import CollectingSink, Outbox
from shared.storage.transactions import in_transaction, read_snapshot

BIRTHDAY_REWARDS = "birthday-rewards"


@dataclass(frozen=True)
class BirthdayRewards:
    clock: Clock
    chunk_size: int = 1000
    name: str = BIRTHDAY_REWARDS

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]:
        summary: dict[str, Any] = {"as_of": as_of.isoformat(), "members": 0, "rewards": 0}
        async with read_snapshot(engine) as conn:
            repository = birthday_repository(conn)
            reward = await repository.birthday_reward()
            zones = await repository.zones_celebrating(possible_birthdays(as_of))
        if reward is None:
            return {**summary, "configured": False}
        celebrated = celebrated_at(as_of, zones)
        after = ""
        while celebrated:
            done = await self._next_chunk(engine, reward, celebrated, as_of, after)
            summary["members"] += done.members
            summary["rewards"] += done.rewards
            if done.last_customer_id is None or done.members < self.chunk_size:
                break
            after = done.last_customer_id
        return {**summary, "configured": True}

    async def _next_chunk(
        self,
        engine: AsyncEngine,
        reward: BirthdayReward,
        celebrated: list[Celebrated],
        as_of: datetime,
        after: str,
    ) -> BirthdaysDone:
        async def chunk(conn: AsyncConnection) -> BirthdaysDone:
            sink = CollectingSink()
            context = BirthdayContext(birthday_repository(conn), sink, self.clock.now())
            done = await grant_birthdays(reward, celebrated, as_of, after, self.chunk_size, context)
            await Outbox(conn, tables.outbox, self.clock).add_all(sink.events)
            return done

        return await in_transaction(engine, chunk)
