"""Surprise rewards: a program manager's rules, and a draw as an auditor recomputes it."""

from __future__ import annotations

import uuid
from decimal import Decimal

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.engagement.adapters import tables
from services.engagement.adapters.repositories.surprises import surprise_repository
from services.engagement.api.schemas import (
    DrawOut,
    SurpriseIn,
    SurpriseListOut,
    SurpriseOut,
    SurprisePatchIn,
)
from services.engagement.domain import surprises as rules
from services.engagement.domain.model import InvalidRule, Scope, Window, purchase_key
from services.engagement.domain.surprises import SurpriseRule
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

KIND = "surprise"


async def create_surprise(
    engine: AsyncEngine, clock: Clock, call: IdempotentCall, body: SurpriseIn
) -> SurpriseOut | JSONResponse:
    rule = _rule(str(uuid.uuid4()), body)

    async def work(conn: AsyncConnection) -> SurpriseOut:
        await surprise_repository(conn).add_surprise(rule, created_at=clock.now())
        return surprise_out(rule)

    return await run_keyed(
        engine, call, tables.idempotency_keys, status_code=201, clock=clock, work=work
    )


async def list_surprises(engine: AsyncEngine) -> SurpriseListOut:
    async with read_snapshot(engine) as conn:
        found = await surprise_repository(conn).all_surprises()
    return SurpriseListOut(items=[surprise_out(rule) for rule in found])


async def get_surprise(engine: AsyncEngine, surprise_id: str) -> SurpriseOut:
    async with read_snapshot(engine) as conn:
        rule = await surprise_repository(conn).surprise(surprise_id)
    if rule is None:
        raise unknown(KIND, surprise_id)
    return surprise_out(rule)


async def update_surprise(
    engine: AsyncEngine, surprise_id: str, patch: SurprisePatchIn
) -> SurpriseOut:
    """Changes what a program manager may change of a rule in force (its name, reward,
    chance, daily budget, cooldown, end, targeting): the next purchases draw by it; what was
    won stays won."""

    async def work(conn: AsyncConnection) -> SurpriseRule:
        repository = surprise_repository(conn)
        locked = await repository.surprise_for_update(surprise_id)
        changed = patched(KIND, in_force(KIND, surprise_id, locked), patch)
        await repository.replace_surprise(changed)
        return changed

    return surprise_out(await in_transaction(engine, work))


async def end_surprise(engine: AsyncEngine, clock: Clock, surprise_id: str) -> None:
    """Ends the rule now (what was won stays won): no purchase read from now on draws."""

    async def work(conn: AsyncConnection) -> None:
        if not await surprise_repository(conn).end_surprise(surprise_id, clock.now()):
            raise unknown(KIND, surprise_id)

    await in_transaction(engine, work)


async def draw_of(
    engine: AsyncEngine, secret: bytes, surprise_id: str, partner_id: str, purchase_id: str
) -> DrawOut:
    """The purchase's draw for the rule, whether or not engagement has seen the purchase:
    what an auditor recomputes, and whether a win was granted (and taken back)."""
    key = purchase_key(partner_id, purchase_id)
    async with read_snapshot(engine) as conn:
        repository = surprise_repository(conn)
        rule = await repository.surprise(surprise_id)
        recorded = await repository.win_of(surprise_id, key) if rule is not None else None
    if rule is None:
        raise unknown(KIND, surprise_id)
    drawn = rules.draw(secret, surprise_id, key)
    return DrawOut(
        surprise_id=surprise_id,
        partner_id=partner_id,
        purchase_id=purchase_id,
        message=drawn.message,
        digest=drawn.digest,
        number=str(drawn.number),
        value=rules.draw_decimal(drawn.value),
        chance=chance_text(rule.chance),
        wins=drawn.wins(rule.chance),
        grant_id=rules.surprise_grant_id(surprise_id, key),
        granted=recorded is not None,
        revoked=recorded is not None and recorded.revoked_at is not None,
    )


def _rule(surprise_id: str, body: SurpriseIn) -> SurpriseRule:
    try:
        return SurpriseRule(
            surprise_id=surprise_id,
            name=body.name,
            chance=body.chance,
            reward=reward_of(body.reward),
            scope=Scope(partner_id=body.partner_id, store_id=body.store_id, category=body.category),
            window=Window(starts_at=body.starts_at, ends_at=body.ends_at),
            min_tier=body.min_tier,
            daily_budget=body.daily_budget,
            cooldown_days=body.cooldown_days,
            tier=body.tier,
            segment=body.segment,
        )
    except InvalidRule as error:
        raise invalid(KIND, error) from None


def chance_text(chance: Decimal) -> str:
    """The chance as the API writes it ("0.02", "1", "0.000001"): never an exponent."""
    return format(chance.normalize(), "f")


def surprise_out(rule: SurpriseRule) -> SurpriseOut:
    return SurpriseOut(
        id=rule.surprise_id,
        name=rule.name,
        chance=chance_text(rule.chance),
        reward=reward_out(rule.reward),
        min_tier=rule.min_tier,
        tier=rule.tier,
        segment=rule.segment,
        partner_id=rule.scope.partner_id,
        store_id=rule.scope.store_id,
        category=rule.scope.category,
        starts_at=rule.window.starts_at,
        ends_at=rule.window.ends_at,
        daily_budget=rule.daily_budget,
        cooldown_days=rule.cooldown_days,
    )
