"""Feedback (product.md §8, "Feedback loops"): the feedback reward a program manager sets (none
until one is put), and the NPS report per partner and store, computed set-based in SQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.engagement.adapters.repositories.feedback import feedback_repository
from services.engagement.api.schemas import FeedbackRewardIn, FeedbackRewardOut, NpsOut
from services.engagement.domain.feedback import DEFAULT_NAME, KINDS, FeedbackReward
from services.engagement.domain.model import InvalidRule
from services.engagement.usecases.rules import invalid, reward_of, reward_out
from shared.clock import Clock
from shared.storage.transactions import in_transaction, read_snapshot
from shared.web.problems import Problem

KIND = "feedback-reward"


def _none() -> Problem:
    return Problem(404, "Not found", "no feedback reward is configured", slug="no-feedback-reward")


async def put_feedback_reward(
    engine: AsyncEngine, clock: Clock, body: FeedbackRewardIn
) -> FeedbackRewardOut:
    """Sets the feedback reward (the same body again changes nothing but its time); it applies
    to feedback engagement reads from then on."""
    try:
        config = FeedbackReward(
            reward=reward_of(body.reward),
            kinds=frozenset(body.kinds or KINDS),
            name=body.name or DEFAULT_NAME,
        )
    except InvalidRule as error:
        raise invalid(KIND, error) from None

    async def work(conn: AsyncConnection) -> None:
        await feedback_repository(conn).set_feedback_reward(config, clock.now())

    await in_transaction(engine, work)
    return feedback_reward_out(config)


async def get_feedback_reward(engine: AsyncEngine) -> FeedbackRewardOut:
    async with read_snapshot(engine) as conn:
        config = await feedback_repository(conn).feedback_reward()
    if config is None:
        raise _none()
    return feedback_reward_out(config)


async def stop_feedback_reward(engine: AsyncEngine) -> None:
    """No feedback reward from now on (those granted stay granted)."""

    async def work(conn: AsyncConnection) -> bool:
        return await feedback_repository(conn).stop_feedback_reward()

    await in_transaction(engine, work)


def feedback_reward_out(config: FeedbackReward) -> FeedbackRewardOut:
    return FeedbackRewardOut(
        reward=reward_out(config.reward),
        kinds=[kind for kind in KINDS if kind in config.kinds],
        name=config.name,
    )


async def nps_report(
    engine: AsyncEngine,
    partner_id: str | None,
    store_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> NpsOut:
    if since is not None and until is not None and until <= since:
        raise Problem(422, "Invalid request", "to: must be after from", slug="invalid-request")
    async with read_snapshot(engine) as conn:
        nps = await feedback_repository(conn).nps(partner_id, store_id, since, until)
    return NpsOut(
        partner_id=partner_id,
        store_id=store_id,
        from_=since,
        to=until,
        count=nps.count,
        promoters=nps.promoters,
        passives=nps.passives,
        detractors=nps.detractors,
        nps=None if nps.score is None else float(nps.score),
    )
