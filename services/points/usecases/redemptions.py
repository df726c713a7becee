"""Redemptions: a customer's available points spent on a reward, soonest-expiring first."""

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.points.adapters.repositories.api import ledger_repository
from services.points.api.schemas import RedemptionIn, RedemptionOut
from services.points.domain.model import EntryKind
from services.points.usecases.common import KEYS, announce_redemption, outbox, spend_available
from shared.clock import Clock
from shared.web.idempotency import IdempotentCall, run_keyed


async def redeem(
    engine: AsyncEngine, clock: Clock, call: IdempotentCall, customer_id: str, body: RedemptionIn
) -> RedemptionOut | JSONResponse:
    """Spends the points (404 for an unknown customer, 409 when not enough) and announces
    `points.redeemed`."""

    async def work(conn: AsyncConnection) -> RedemptionOut:
        spent = await spend_available(
            ledger_repository(conn),
            kind=EntryKind.REDEEM,
            customer_id=customer_id,
            points=body.points,
            reason=body.reward,
            now=clock.now(),
        )
        await announce_redemption(
            outbox(conn, clock), clock, customer_id, spent.entry_id, body.points, body.reward
        )
        return RedemptionOut(
            redemption_id=spent.entry_id, points=body.points, available_after=spent.available_after
        )

    return await run_keyed(engine, call, KEYS, status_code=201, clock=clock, work=work)
