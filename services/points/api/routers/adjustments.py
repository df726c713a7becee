"""Staff adjustments and surprise rewards: points given or taken by staff, with who and why."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from services.points.adapters import tables
from services.points.adapters.repository import SqlLedgerRepository
from services.points.api.deps import AdminScope, ClockDep, ProgramDep, RuntimeDep
from services.points.api.replies import locked_ledger, not_enough, problems
from services.points.api.schemas import AdjustmentIn, AdjustmentOut
from services.points.domain.adjustments import adjust
from services.points.domain.lots import NotEnoughPoints, balance_of
from shared.bounds import Identifier
from shared.messaging import events
from shared.messaging.outbox import Outbox, emit
from shared.web.idempotency import IdempotencyDep
from shared.web.strict_json import StrictJsonRoute

SOURCE = "points"

router = APIRouter(prefix="/v1/customers", tags=["adjustments"], route_class=StrictJsonRoute)


@router.post(
    "/{customer_id}/adjustments",
    status_code=201,
    response_model=AdjustmentOut,
    responses=problems(401, 403, 404, 409, 422),
)
async def add_adjustment(
    customer_id: Annotated[Identifier, Path()],
    body: AdjustmentIn,
    runtime: RuntimeDep,
    clock: ClockDep,
    program: ProgramDep,
    call: IdempotencyDep,
    _: AdminScope,
) -> AdjustmentOut | JSONResponse:
    async with runtime.engine.begin() as conn:
        if (replayed := await call.replay(conn, tables.idempotency_keys)) is not None:
            return replayed
        ledger = SqlLedgerRepository(conn)
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
        await conn.execute(
            tables.adjustments.insert().values(
                adjustment_id=adjustment_id,
                customer_id=customer_id,
                points=body.points,
                reason=body.reason,
                actor=body.actor,
                created_at=now,
            )
        )
        await emit(
            Outbox(conn, tables.outbox, clock),
            events.PointsAdjusted(
                customer_id=customer_id, points=body.points, reason=body.reason, actor=body.actor
            ),
            source=SOURCE,
            customer_id=customer_id,
            time=now,
            cause_id=adjustment_id,
            purpose="points-adjusted",
        )
        after = balance_of(customer_id, [*entries, entry], now, [*allocations, *drawn])
        answer = AdjustmentOut(
            adjustment_id=adjustment_id,
            points=body.points,
            reason=body.reason,
            actor=body.actor,
            available_after=after.available,
        )
        await call.remember(conn, tables.idempotency_keys, 201, answer, now)
    return answer
