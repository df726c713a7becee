"""Staff adjustments and surprise rewards: points given or taken by staff, with who and why."""

import uuid

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.points import ports
from services.points.adapters.repositories.api import ledger_repository
from services.points.api.schemas import AdjustmentIn, AdjustmentOut
from services.points.domain.adjustments import adjust
from services.points.domain.lots import NotEnoughPoints, balance_of
from services.points.domain.model import Program
from services.points.usecases.common import KEYS, SOURCE, locked_ledger, not_enough, outbox
from shared.clock import Clock
from shared.messaging import events
from shared.messaging.outbox import emit
from shared.web.idempotency import IdempotentCall, run_keyed


async def add_adjustment(
    engine: AsyncEngine,
    clock: Clock,
    program: Program,
    call: IdempotentCall,
    customer_id: str,
    body: AdjustmentIn,
    *,
    actor: str,
) -> AdjustmentOut | JSONResponse:
    """Gives or takes the points (a take draws on the lots like a spend; 409 when not
    enough), records who (`actor`: the credential the call carries) and why, and announces
    `points.adjusted`."""

    async def work(conn: AsyncConnection) -> AdjustmentOut:
        ledger = ledger_repository(conn)
        entries, allocations = await locked_ledger(ledger, customer_id)
        now = clock.now()
        adjustment_id = str(uuid.uuid4())
        try:
            entry, drawn = adjust(
                program,
                entries,
                allocations,
                entry_id=adjustment_id,
                customer_id=customer_id,
                points=body.points,
                reason=body.reason,
                now=now,
            )
        except NotEnoughPoints as refused:
            raise not_enough(refused) from None
        await ledger.record([entry])
        await ledger.record_allocations([(customer_id, a) for a in drawn])
        await ledger.add_adjustment(
            ports.Adjustment(
                adjustment_id, customer_id, body.points, body.reason, actor, created_at=now
            )
        )
        await emit(
            outbox(conn, clock),
            events.PointsAdjusted(
                customer_id=customer_id, points=body.points, reason=body.reason, actor=actor
            ),
            source=SOURCE,
            customer_id=customer_id,
            time=now,
            cause_id=adjustment_id,
            purpose="points-adjusted",
        )
        after = balance_of(customer_id, [*entries, entry], now, [*allocations, *drawn])
        return AdjustmentOut(
            adjustment_id=adjustment_id,
            points=body.points,
            reason=body.reason,
            actor=actor,
            available_after=after.available,
        )

    return await run_keyed(engine, call, KEYS, status_code=201, clock=clock, work=work)
