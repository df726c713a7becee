"""The birthday reward (product.md §8, "Birthdays"): one, configured by a program manager,
granted by the `birthday-rewards` job; none (stopped) until one is put."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.engagement.adapters.repositories.birthdays import birthday_repository
from services.engagement.api.schemas import BirthdayRewardIn, BirthdayRewardOut
from services.engagement.domain.birthdays import BirthdayReward
from services.engagement.domain.model import InvalidRule
from services.engagement.usecases.rules import invalid, reward_of, reward_out
from shared.clock import Clock
from shared.storage.transactions import in_transaction, read_snapshot
from shared.web.problems import Problem

KIND = "birthday-reward"


def _none() -> Problem:
    return Problem(404, "Not found", "no birthday reward is configured", slug="no-birthday-reward")


async def put_birthday_reward(
    engine: AsyncEngine, clock: Clock, body: BirthdayRewardIn
) -> BirthdayRewardOut:
    """Sets the birthday reward (the same body again changes nothing but its time)."""
    try:
        reward = BirthdayReward(reward=reward_of(body.reward), min_tier=body.min_tier)
    except InvalidRule as error:
        raise invalid(KIND, error) from None

    async def work(conn: AsyncConnection) -> None:
        await birthday_repository(conn).set_birthday_reward(reward, clock.now())

    await in_transaction(engine, work)
    return birthday_reward_out(reward)


async def get_birthday_reward(engine: AsyncEngine) -> BirthdayRewardOut:
    async with read_snapshot(engine) as conn:
        reward = await birthday_repository(conn).birthday_reward()
    if reward is None:
        raise _none()
    return birthday_reward_out(reward)


async def stop_birthday_reward(engine: AsyncEngine) -> None:
    """No birthday reward from now on (those granted stay granted); stopping a reward that
    is not set changes nothing."""

    async def work(conn: AsyncConnection) -> bool:
        return await birthday_repository(conn).stop_birthday_reward()

    await in_transaction(engine, work)


def birthday_reward_out(reward: BirthdayReward) -> BirthdayRewardOut:
    return BirthdayRewardOut(reward=reward_out(reward.reward), min_tier=reward.min_tier)
