"""Redemptions: a customer's available points spent, soonest-expiring first, on a free-form
reward, or on a reward of the catalogue, which issues a single-use coupon."""

import uuid
from datetime import datetime

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.points import ports
from services.points.adapters.repositories.api import ledger_repository
from services.points.adapters.repositories.catalogue import catalogue_repository
from services.points.api.schemas import CouponIssuedOut, RedemptionIn, RedemptionOut
from services.points.domain.coupons import Coupon, new_code, shown
from services.points.domain.model import EntryKind
from services.points.domain.rewards import DEFAULT_TIER, STOCK, Reward, coupon_expiry, why_not
from services.points.usecases.common import (
    KEYS,
    SOURCE,
    announce_redemption,
    outbox,
    spend_available,
    unknown_customer,
)
from services.points.usecases.rewards import unknown_reward
from shared.clock import Clock
from shared.messaging import events
from shared.messaging.outbox import emit
from shared.web.deps import Caller
from shared.web.idempotency import IdempotentCall, run_keyed
from shared.web.problems import Problem


async def redeem(
    engine: AsyncEngine,
    clock: Clock,
    call: IdempotentCall,
    caller: Caller,
    customer_id: str,
    body: RedemptionIn,
) -> RedemptionOut | JSONResponse:
    """Spends the points (404 for an unknown customer or reward, 409 when not enough or the
    reward is not redeemable) and announces `points.redeemed` (and `coupon.issued`). A till's
    partner and store are recorded as honouring it, unless the reward names its partner."""

    async def work(conn: AsyncConnection) -> RedemptionOut:
        if body.reward_id is not None:
            return await _redeem_reward(conn, clock, caller, customer_id, body.reward_id)
        assert body.points is not None and body.reward is not None
        spent = await spend_available(
            ledger_repository(conn),
            kind=EntryKind.REDEEM,
            customer_id=customer_id,
            points=body.points,
            reason=body.reward,
            now=clock.now(),
            partner_id=caller.partner_id,
            store_id=caller.store_id,
        )
        await announce_redemption(
            outbox(conn, clock),
            clock,
            customer_id,
            spent.entry_id,
            body.points,
            body.reward,
            partner_id=caller.partner_id,
            store_id=caller.store_id,
        )
        return RedemptionOut(
            redemption_id=spent.entry_id, points=body.points, available_after=spent.available_after
        )

    return await run_keyed(engine, call, KEYS, status_code=201, clock=clock, work=work)


async def _redeem_reward(
    conn: AsyncConnection, clock: Clock, caller: Caller, customer_id: str, reward_id: str
) -> RedemptionOut:
    """Under the customer's lock and the reward's: its window, tier, stock and per-customer
    limit, then the points; one coupon issued, one counted off the stock."""
    now = clock.now()
    ledger = ledger_repository(conn)
    catalogue = catalogue_repository(conn)
    await ledger.lock_customer(customer_id)
    if not await ledger.is_known(customer_id):
        raise unknown_customer(customer_id)
    reward = await catalogue.reward(reward_id, for_update=True)
    if reward is None:
        raise unknown_reward(reward_id)
    await _check_redeemable(catalogue, reward, customer_id, now)
    if not await catalogue.take_one(reward_id):
        raise unavailable(reward, [STOCK])
    partner_id = reward.partner_id or caller.partner_id
    spent = await spend_available(
        ledger,
        kind=EntryKind.REDEEM,
        customer_id=customer_id,
        points=reward.points_cost,
        reason=reward.name,
        now=now,
        partner_id=partner_id,
        store_id=caller.store_id,
        reward_id=reward_id,
    )
    coupon = Coupon(
        coupon_id=str(uuid.uuid4()),
        code=new_code(),
        customer_id=customer_id,
        reward_id=reward_id,
        redemption_id=spent.entry_id,
        points=reward.points_cost,
        issued_at=now,
        expires_at=coupon_expiry(reward, now),
    )
    await catalogue.add_coupon(coupon)
    await _announce(conn, clock, reward, coupon, partner_id, caller.store_id)
    return RedemptionOut(
        redemption_id=spent.entry_id,
        points=reward.points_cost,
        reward_id=reward_id,
        coupon=CouponIssuedOut(
            coupon_id=coupon.coupon_id, code=shown(coupon.code), expires_at=coupon.expires_at
        ),
        available_after=spent.available_after,
    )


async def _check_redeemable(
    catalogue: ports.CatalogueRepository, reward: Reward, customer_id: str, now: datetime
) -> None:
    """409 `reward-unavailable` with the reasons (tier, stock, limit, window); the points are
    judged by the spend (409 `not-enough-points`)."""
    tier = await catalogue.tier_of(customer_id) or DEFAULT_TIER
    held = await catalogue.coupons_held(customer_id, [reward.reward_id])
    reasons = why_not(
        reward, tier=tier, used=held.get(reward.reward_id, 0), available=None, now=now
    )
    if reasons:
        raise unavailable(reward, reasons)


async def _announce(
    conn: AsyncConnection,
    clock: Clock,
    reward: Reward,
    coupon: Coupon,
    partner_id: str | None,
    store_id: str | None,
) -> None:
    """`points.redeemed` and `coupon.issued`, in the redemption's transaction."""
    sink = outbox(conn, clock)
    await announce_redemption(
        sink,
        clock,
        coupon.customer_id,
        coupon.redemption_id,
        coupon.points,
        reward.name,
        reward_id=reward.reward_id,
        partner_id=partner_id,
        store_id=store_id,
    )
    await emit(
        sink,
        events.CouponIssued(
            coupon_id=coupon.coupon_id,
            customer_id=coupon.customer_id,
            redemption_id=coupon.redemption_id,
            reward_id=reward.reward_id,
            reward=reward.name,
            points=coupon.points,
            partner_id=reward.partner_id,
            expires_at=coupon.expires_at,
        ),
        source=SOURCE,
        customer_id=coupon.customer_id,
        time=clock.now(),
        cause_id=coupon.coupon_id,
        purpose="coupon-issued",
    )


def unavailable(reward: Reward, reasons: list[str]) -> Problem:
    return Problem(
        409,
        "Reward unavailable",
        f"reward {reward.reward_id!r} cannot be redeemed now: {', '.join(reasons)}",
        slug="reward-unavailable",
        reasons=reasons,
    )
