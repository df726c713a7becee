"""Redemptions: a customer's available points spent on a reward, soonest-expiring first."""

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from services.points.adapters import tables
from services.points.adapters.repository import SqlLedgerRepository
from services.points.api.deps import AdminScope, ClockDep, RuntimeDep
from services.points.api.replies import problems, spend_available
from services.points.api.schemas import RedemptionIn, RedemptionOut
from services.points.domain.model import EntryKind
from shared.bounds import Identifier
from shared.clock import Clock
from shared.messaging import events
from shared.messaging.outbox import Outbox, emit
from shared.web.idempotency import IdempotencyDep
from shared.web.strict_json import StrictJsonRoute

SOURCE = "points"

router = APIRouter(prefix="/v1/customers", tags=["redemptions"], route_class=StrictJsonRoute)


@router.post(
    "/{customer_id}/redemptions",
    status_code=201,
    response_model=RedemptionOut,
    responses=problems(401, 403, 404, 409, 422),
)
async def redeem(
    customer_id: Annotated[Identifier, Path()],
    body: RedemptionIn,
    runtime: RuntimeDep,
    clock: ClockDep,
    call: IdempotencyDep,
    _: AdminScope,
) -> RedemptionOut | JSONResponse:
    async with runtime.engine.begin() as conn:
        if (replayed := await call.replay(conn, tables.idempotency_keys)) is not None:
            return replayed
        now = clock.now()
        spent = await spend_available(
            SqlLedgerRepository(conn),
            kind=EntryKind.REDEEM,
            customer_id=customer_id,
            points=body.points,
            reason=body.reward,
            now=now,
        )
        await announce_redemption(
            conn, clock, customer_id, spent.entry_id, body.points, body.reward
        )
        answer = RedemptionOut(
            redemption_id=spent.entry_id, points=body.points, available_after=spent.available_after
        )
        await call.remember(conn, tables.idempotency_keys, 201, answer, now)
    return answer


async def announce_redemption(
    conn: AsyncConnection,
    clock: Clock,
    customer_id: str,
    redemption_id: str,
    points: int,
    reward: str,
) -> None:
    await emit(
        Outbox(conn, tables.outbox, clock),
        events.PointsRedeemed(
            customer_id=customer_id,
            points=points,
            redemption_id=redemption_id,
            reward=reward,
        ),
        source=SOURCE,
        customer_id=customer_id,
        time=clock.now(),
        cause_id=redemption_id,
        purpose="points-redeemed",
    )
