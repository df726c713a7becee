"""Stamp cards ("buy 9 coffees, the 10th is free"): a program manager's rules."""

from __future__ import annotations

import uuid

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.engagement.adapters import tables
from services.engagement.adapters.repositories.api import api_repository
from services.engagement.api.schemas import (
    StampCardIn,
    StampCardListOut,
    StampCardOut,
    StampCardPatchIn,
)
from services.engagement.domain.model import InvalidRule, Scope, Window
from services.engagement.domain.stamps import StampCardRule
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

KIND = "stamp-card"


async def create_stamp_card(
    engine: AsyncEngine, clock: Clock, call: IdempotentCall, body: StampCardIn
) -> StampCardOut | JSONResponse:
    rule = _rule(str(uuid.uuid4()), body)

    async def work(conn: AsyncConnection) -> StampCardOut:
        await api_repository(conn).add_stamp_card(rule, created_at=clock.now())
        return stamp_card_out(rule)

    return await run_keyed(
        engine, call, tables.idempotency_keys, status_code=201, clock=clock, work=work
    )


async def list_stamp_cards(engine: AsyncEngine) -> StampCardListOut:
    async with read_snapshot(engine) as conn:
        rules = await api_repository(conn).all_stamp_cards()
    return StampCardListOut(items=[stamp_card_out(rule) for rule in rules])


async def get_stamp_card(engine: AsyncEngine, card_id: str) -> StampCardOut:
    async with read_snapshot(engine) as conn:
        rule = await api_repository(conn).stamp_card(card_id)
    if rule is None:
        raise unknown(KIND, card_id)
    return stamp_card_out(rule)


async def update_stamp_card(
    engine: AsyncEngine, card_id: str, patch: StampCardPatchIn
) -> StampCardOut:
    """Changes what a program manager may change of a card in force (its name, reward, end,
    targeting, min_amount): the next stamps and completions follow it, what members hold
    stays."""

    async def work(conn: AsyncConnection) -> StampCardRule:
        repository = api_repository(conn)
        current = in_force(KIND, card_id, await repository.stamp_card_for_update(card_id))
        changed = patched(KIND, current, patch)
        await repository.replace_stamp_card(changed)
        return changed

    return stamp_card_out(await in_transaction(engine, work))


async def end_stamp_card(engine: AsyncEngine, clock: Clock, card_id: str) -> None:
    """Ends the card now (members keep their cards and what they completed): no stamp is
    given for a purchase made from now on."""

    async def work(conn: AsyncConnection) -> None:
        if not await api_repository(conn).end_stamp_card(card_id, clock.now()):
            raise unknown(KIND, card_id)

    await in_transaction(engine, work)


def _rule(card_id: str, body: StampCardIn) -> StampCardRule:
    try:
        return StampCardRule(
            card_id=card_id,
            name=body.name,
            stamps_required=body.stamps_required,
            per=body.per,
            scope=Scope(partner_id=body.partner_id, store_id=body.store_id, category=body.category),
            reward=reward_of(body.reward),
            window=Window(starts_at=body.starts_at, ends_at=body.ends_at),
            min_amount=body.min_amount,
            min_tier=body.min_tier,
            tier=body.tier,
            segment=body.segment,
        )
    except InvalidRule as error:
        raise invalid(KIND, error) from None


def stamp_card_out(rule: StampCardRule) -> StampCardOut:
    return StampCardOut(
        id=rule.card_id,
        name=rule.name,
        stamps_required=rule.stamps_required,
        per=rule.per,
        category=rule.scope.category,
        partner_id=rule.scope.partner_id,
        store_id=rule.scope.store_id,
        min_amount=rule.min_amount,
        min_tier=rule.min_tier,
        tier=rule.tier,
        segment=rule.segment,
        reward=reward_out(rule.reward),
        starts_at=rule.window.starts_at,
        ends_at=rule.window.ends_at,
    )
