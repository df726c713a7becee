"""Challenges: time-boxed goals with a reward and a badge, a program manager's rules."""

from __future__ import annotations

import uuid

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.engagement.adapters import tables
from services.engagement.adapters.repositories.api import api_repository
from services.engagement.api.schemas import (
    ChallengeIn,
    ChallengeListOut,
    ChallengeOut,
    ChallengePatchIn,
    GoalOut,
)
from services.engagement.domain.challenges import ChallengeRule, Goal
from services.engagement.domain.model import InvalidRule, Window
from services.engagement.usecases.rules import (
    in_force,
    invalid,
    patched,
    reward_of,
    reward_out,
    unknown,
)
from shared.clock import Clock
from shared.storage.transactions import in_transaction, read_snapshot
from shared.web.idempotency import IdempotentCall, run_keyed

KIND = "challenge"


async def create_challenge(
    engine: AsyncEngine, clock: Clock, call: IdempotentCall, body: ChallengeIn
) -> ChallengeOut | JSONResponse:
    rule = _rule(str(uuid.uuid4()), body)

    async def work(conn: AsyncConnection) -> ChallengeOut:
        await api_repository(conn).add_challenge(rule, created_at=clock.now())
        return challenge_out(rule)

    return await run_keyed(
        engine, call, tables.idempotency_keys, status_code=201, clock=clock, work=work
    )


async def list_challenges(engine: AsyncEngine) -> ChallengeListOut:
    async with read_snapshot(engine) as conn:
        rules = await api_repository(conn).all_challenges()
    return ChallengeListOut(items=[challenge_out(rule) for rule in rules])


async def get_challenge(engine: AsyncEngine, challenge_id: str) -> ChallengeOut:
    async with read_snapshot(engine) as conn:
        rule = await api_repository(conn).challenge(challenge_id)
    if rule is None:
        raise unknown(KIND, challenge_id)
    return challenge_out(rule)


async def update_challenge(
    engine: AsyncEngine, challenge_id: str, patch: ChallengePatchIn
) -> ChallengeOut:
    """Changes what a program manager may change of a challenge in force (its name, reward,
    badge, end, targeting); its goal and start stay, and so does what members completed."""

    async def work(conn: AsyncConnection) -> ChallengeRule:
        repository = api_repository(conn)
        locked = await repository.challenge_for_update(challenge_id)
        changed = patched(KIND, in_force(KIND, challenge_id, locked), patch)
        await repository.replace_challenge(changed)
        return changed

    return challenge_out(await in_transaction(engine, work))


async def end_challenge(engine: AsyncEngine, clock: Clock, challenge_id: str) -> None:
    """Ends the challenge now: what members completed stays, nothing more counts."""

    async def work(conn: AsyncConnection) -> None:
        if not await api_repository(conn).end_challenge(challenge_id, clock.now()):
            raise unknown(KIND, challenge_id)

    await in_transaction(engine, work)


def _rule(challenge_id: str, body: ChallengeIn) -> ChallengeRule:
    try:
        return ChallengeRule(
            challenge_id=challenge_id,
            name=body.name,
            goal=Goal(
                kind=body.goal.kind,
                target=body.goal.target,
                category=body.goal.category,
                partner_id=body.goal.partner_id,
            ),
            window=Window(starts_at=body.starts_at, ends_at=body.ends_at),
            reward=reward_of(body.reward),
            badge=body.badge,
            min_tier=body.min_tier,
            tier=body.tier,
            segment=body.segment,
        )
    except InvalidRule as error:
        raise invalid(KIND, error) from None


def goal_out(goal: Goal) -> GoalOut:
    return GoalOut(
        kind=goal.kind, target=goal.target, category=goal.category, partner_id=goal.partner_id
    )


def challenge_out(rule: ChallengeRule) -> ChallengeOut:
    return ChallengeOut(
        id=rule.challenge_id,
        name=rule.name,
        goal=goal_out(rule.goal),
        starts_at=rule.window.starts_at,
        ends_at=rule.window.ends_at,
        reward=reward_out(rule.reward) if rule.reward is not None else None,
        badge=rule.badge,
        min_tier=rule.min_tier,
        tier=rule.tier,
        segment=rule.segment,
    )
