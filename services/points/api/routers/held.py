"""Earnings the velocity guard held for review: staff release them (they become a lot, and
repay debt first) or reject them, once."""

from datetime import datetime
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.points.adapters import tables
from services.points.adapters.repository import SqlLedgerRepository
from services.points.api.deps import AdminScope, ClockDep, RuntimeDep
from services.points.api.replies import problems
from services.points.api.schemas import HeldDecisionOut
from services.points.domain.lots import Allocation
from services.points.domain.model import EntryKind, LedgerEntry
from services.points.domain.refunds import repay_debt
from services.points.domain.velocity import released
from shared.bounds import Identifier
from shared.clock import Clock
from shared.messaging import events
from shared.messaging.outbox import Outbox, emit
from shared.web.idempotency import IdempotencyDep
from shared.web.problems import Problem
from shared.web.strict_json import StrictJsonRoute

SOURCE = "points"

router = APIRouter(prefix="/v1/held", tags=["held earnings"], route_class=StrictJsonRoute)

Decision = Literal["released", "rejected"]
HeldId = Annotated[Identifier, Path()]


@router.post(
    "/{held_id}/release",
    response_model=HeldDecisionOut,
    # 400: a malformed Idempotency-Key (routes with a body get it documented with the body).
    responses=problems(400, 401, 403, 404, 409, 422),
)
async def release_held(
    held_id: HeldId, runtime: RuntimeDep, clock: ClockDep, call: IdempotencyDep, _: AdminScope
) -> HeldDecisionOut | JSONResponse:
    return await _decide(held_id, "released", runtime, clock, call)


@router.post(
    "/{held_id}/reject",
    response_model=HeldDecisionOut,
    responses=problems(400, 401, 403, 404, 409, 422),
)
async def reject_held(
    held_id: HeldId, runtime: RuntimeDep, clock: ClockDep, call: IdempotencyDep, _: AdminScope
) -> HeldDecisionOut | JSONResponse:
    return await _decide(held_id, "rejected", runtime, clock, call)


async def _decide(
    held_id: str, decision: Decision, runtime: RuntimeDep, clock: ClockDep, call: IdempotencyDep
) -> HeldDecisionOut | JSONResponse:
    async with runtime.engine.begin() as conn:
        if (replayed := await call.replay(conn, tables.idempotency_keys)) is not None:
            return replayed
        row = (
            await conn.execute(
                sa.select(tables.ledger_entries).where(
                    tables.ledger_entries.c.entry_id == held_id,
                    tables.ledger_entries.c.kind == EntryKind.HELD.value,
                )
            )
        ).first()
        if row is None:
            raise Problem(404, "Not found", f"no held earning {held_id!r}", slug="unknown-held")
        ledger = SqlLedgerRepository(conn)
        await ledger.lock_customer(row.customer_id)
        now = clock.now()
        inserted = await conn.scalar(
            pg_insert(tables.held_decisions)
            .values(held_id=held_id, customer_id=row.customer_id, decision=decision, decided_at=now)
            .on_conflict_do_nothing()
            .returning(tables.held_decisions.c.decided_at)
        )
        decided_at: datetime
        if inserted is None:
            earlier = (
                await conn.execute(
                    sa.select(tables.held_decisions).where(
                        tables.held_decisions.c.held_id == held_id
                    )
                )
            ).one()
            if earlier.decision != decision:
                raise Problem(
                    409,
                    "Already decided",
                    f"held earning {held_id!r} was {earlier.decision} already",
                    slug="held-decided",
                    decision=earlier.decision,
                )
            decided_at = earlier.decided_at
        else:
            decided_at = inserted
            if decision == "released":
                entries = await ledger.entries(row.customer_id)
                held = next(e for e in entries if e.entry_id == held_id)
                allocations = await ledger.allocations_of(row.customer_id)
                # Refunds of the purchase take its held part first: only the rest is released.
                taken_back = sum(a.points for a in allocations if a.lot_id == held_id)
                lot = released(held, now=now, taken_back=taken_back)
                if lot is not None:
                    await _grant(ledger, conn, clock, entries, allocations, lot, now)
        answer = HeldDecisionOut(
            held_id=held_id,
            customer_id=row.customer_id,
            points=row.points,
            decision=decision,
            decided_at=decided_at,
        )
        await call.remember(conn, tables.idempotency_keys, 200, answer, now)
    return answer


async def _grant(
    ledger: SqlLedgerRepository,
    conn: AsyncConnection,
    clock: Clock,
    entries: list[LedgerEntry],
    allocations: list[Allocation],
    lot: LedgerEntry,
    now: datetime,
) -> None:
    """The released lot, the debt it repays first, and its points.earned."""
    repaid = repay_debt([*entries, lot], allocations, now)
    await ledger.record([lot])
    await ledger.record_allocations([(lot.customer_id, a) for a in repaid])
    assert lot.expires_at is not None
    await emit(
        Outbox(conn, tables.outbox, clock),
        events.PointsEarned(
            customer_id=lot.customer_id,
            points=lot.points,
            purchase_id=lot.purchase_id,
            reason=lot.reason,
            rule_ids=list(lot.rule_ids),
            available_at=lot.available_at,
            expires_at=lot.expires_at,
        ),
        source=SOURCE,
        customer_id=lot.customer_id,
        time=now,
        cause_id=lot.entry_id,
        purpose="points-earned",
    )
