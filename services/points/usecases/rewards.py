"""The reward catalogue: rewards created, listed, changed and retired by an administrator, and
what one member may redeem now (read, admin, or a till through ingest)."""

import uuid
from dataclasses import replace
from datetime import datetime

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.points import ports
from services.points.adapters.repositories.catalogue import catalogue_repository
from services.points.api.schemas import (
    CustomerRewardOut,
    CustomerRewardsOut,
    RewardIn,
    RewardListOut,
    RewardOut,
    RewardPatchIn,
)
from services.points.domain.lots import balance_of
from services.points.domain.rewards import (
    DEFAULT_TIER,
    POINTS,
    Reward,
    RewardKind,
    reward_flaw,
    why_not,
)
from services.points.usecases.common import KEYS, unknown_customer
from shared.clock import Clock
from shared.web.deps import Caller
from shared.web.idempotency import IdempotentCall, run_keyed
from shared.web.problems import Problem


async def create_reward(
    engine: AsyncEngine, clock: Clock, call: IdempotentCall, body: RewardIn
) -> RewardOut | JSONResponse:
    fields = body.model_dump()
    fields["kind"] = RewardKind(body.kind)
    reward = _sound(Reward(reward_id=str(uuid.uuid4()), created_at=clock.now(), **fields))

    async def work(conn: AsyncConnection) -> RewardOut:
        await catalogue_repository(conn).add_reward(reward)
        return reward_out(reward)

    return await run_keyed(engine, call, KEYS, status_code=201, clock=clock, work=work)


async def list_rewards(
    catalogue: ports.CatalogueRepository, now: datetime, *, include_ended: bool
) -> RewardListOut:
    """The rewards not retired nor ended at `now` (every one with `include_ended`)."""
    rewards = await catalogue.rewards(now=now, include_ended=include_ended)
    return RewardListOut(items=[reward_out(r) for r in rewards])


async def get_reward(catalogue: ports.CatalogueRepository, reward_id: str) -> RewardOut:
    reward = await catalogue.reward(reward_id)
    if reward is None:
        raise unknown_reward(reward_id)
    return reward_out(reward)


async def update_reward(
    engine: AsyncEngine, clock: Clock, call: IdempotentCall, reward_id: str, patch: RewardPatchIn
) -> RewardOut | JSONResponse:
    async def work(conn: AsyncConnection) -> RewardOut:
        catalogue = catalogue_repository(conn)
        current = await catalogue.reward(reward_id, for_update=True)
        if current is None:
            raise unknown_reward(reward_id)
        changes = patch.changes()
        if "kind" in changes:
            changes["kind"] = RewardKind(str(changes["kind"]))
        changed = _sound(replace(current, **changes))  # type: ignore[arg-type]
        await catalogue.replace_reward(changed)
        return reward_out(changed)

    return await run_keyed(engine, call, KEYS, status_code=200, clock=clock, work=work)


async def retire_reward(
    engine: AsyncEngine, clock: Clock, call: IdempotentCall, reward_id: str
) -> RewardOut | JSONResponse:
    """No new redemptions from now on; the coupons already issued stay valid. Retiring a
    retired reward changes nothing."""

    async def work(conn: AsyncConnection) -> RewardOut:
        catalogue = catalogue_repository(conn)
        current = await catalogue.reward(reward_id, for_update=True)
        if current is None:
            raise unknown_reward(reward_id)
        if current.retired_at is None:
            current = replace(current, retired_at=clock.now())
            await catalogue.replace_reward(current)
        return reward_out(current)

    return await run_keyed(engine, call, KEYS, status_code=200, clock=clock, work=work)


async def customer_rewards(
    ledger: ports.LedgerRepository,
    catalogue: ports.CatalogueRepository,
    caller: Caller,
    customer_id: str,
    now: datetime,
) -> CustomerRewardsOut:
    """Every listed reward (at a till: those any partner or the till's partner honours) with
    whether the member may redeem it now and, when not, why: one query per list."""
    if not await ledger.is_known(customer_id):
        raise unknown_customer(customer_id)
    lots, drawn = await ledger.open_lots(customer_id, now)
    available = balance_of(customer_id, lots, now, drawn).available
    rewards = await catalogue.rewards(now=now, include_ended=False, partner_id=caller.partner_id)
    tier = await catalogue.tier_of(customer_id) or DEFAULT_TIER
    held = await catalogue.coupons_held(customer_id, [r.reward_id for r in rewards])
    out = []
    for reward in rewards:
        reasons = why_not(
            reward, tier=tier, used=held.get(reward.reward_id, 0), available=available, now=now
        )
        out.append(
            CustomerRewardOut(
                **reward_out(reward).model_dump(),
                affordable=POINTS not in reasons,
                redeemable=not reasons,
                why_not=reasons,
            )
        )
    return CustomerRewardsOut(customer_id=customer_id, available=available, rewards=out)


def _sound(reward: Reward) -> Reward:
    if (flaw := reward_flaw(reward)) is not None:
        raise Problem(422, "Invalid reward", flaw, slug="invalid-reward")
    return reward


def reward_out(reward: Reward) -> RewardOut:
    return RewardOut(
        id=reward.reward_id,
        name=reward.name,
        points_cost=reward.points_cost,
        kind=reward.kind.value,
        value=reward.value,
        partner_id=reward.partner_id,
        min_tier=reward.min_tier,
        stock=reward.stock,
        per_customer_limit=reward.per_customer_limit,
        starts_at=reward.starts_at,
        ends_at=reward.ends_at,
        coupon_validity_days=reward.coupon_validity_days,
        description=reward.description,
        redeemed=reward.redeemed,
        created_at=reward.created_at,
        retired_at=reward.retired_at,
    )


def unknown_reward(reward_id: str) -> Problem:
    return Problem(404, "Not found", f"no reward {reward_id!r}", slug="unknown-reward")
