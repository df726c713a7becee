"""Holds for POS terminals: points reserved before the payment completes, then captured,
voided, or lapsed by the `lapse-holds` job after the program's timeout."""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from services.points.adapters import tables
from services.points.adapters.holds import SqlHoldRepository
from services.points.adapters.repository import SqlLedgerRepository
from services.points.api.deps import AdminScope, ClockDep, ProgramDep, RuntimeDep
from services.points.api.replies import problems, spend_available
from services.points.api.routers.redemptions import announce_redemption
from services.points.api.schemas import HoldIn, HoldOut, HoldStateOut
from services.points.domain.holds import Hold, HoldAction, HoldSettled, settle
from services.points.domain.lots import release
from services.points.domain.model import EntryKind
from shared.bounds import Identifier
from shared.web.idempotency import IdempotencyDep
from shared.web.problems import Problem
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1", tags=["holds"], route_class=StrictJsonRoute)

HoldId = Annotated[Identifier, Path()]


@router.post(
    "/customers/{customer_id}/holds",
    status_code=201,
    response_model=HoldOut,
    responses=problems(401, 403, 404, 409, 422),
)
async def place_hold(
    customer_id: Annotated[Identifier, Path()],
    body: HoldIn,
    runtime: RuntimeDep,
    clock: ClockDep,
    program: ProgramDep,
    call: IdempotencyDep,
    _: AdminScope,
) -> HoldOut | JSONResponse:
    async with runtime.engine.begin() as conn:
        if (replayed := await call.replay(conn, tables.idempotency_keys)) is not None:
            return replayed
        now = clock.now()
        spent = await spend_available(
            SqlLedgerRepository(conn),
            kind=EntryKind.HOLD,
            customer_id=customer_id,
            points=body.points,
            reason=body.reward,
            now=now,
        )
        hold_id = spent.entry_id
        hold = Hold(
            hold_id=hold_id,
            customer_id=customer_id,
            points=body.points,
            reward=body.reward,
            created_at=now,
            expires_at=now + timedelta(minutes=program.hold_timeout_minutes),
        )
        await SqlHoldRepository(conn).add(hold)
        answer = HoldOut(hold_id=hold_id, points=hold.points, expires_at=hold.expires_at)
        await call.remember(conn, tables.idempotency_keys, 201, answer, now)
    return answer


@router.post(
    "/holds/{hold_id}/capture",
    response_model=HoldStateOut,
    # 400: a malformed Idempotency-Key (routes with a body get it documented with the body).
    responses=problems(400, 401, 403, 404, 409, 422),
)
async def capture_hold(
    hold_id: HoldId, runtime: RuntimeDep, clock: ClockDep, call: IdempotencyDep, _: AdminScope
) -> HoldStateOut | JSONResponse:
    return await _settle(hold_id, HoldAction.CAPTURE, runtime, clock, call)


@router.post(
    "/holds/{hold_id}/void",
    response_model=HoldStateOut,
    # 400: a malformed Idempotency-Key (routes with a body get it documented with the body).
    responses=problems(400, 401, 403, 404, 409, 422),
)
async def void_hold(
    hold_id: HoldId, runtime: RuntimeDep, clock: ClockDep, call: IdempotencyDep, _: AdminScope
) -> HoldStateOut | JSONResponse:
    return await _settle(hold_id, HoldAction.VOID, runtime, clock, call)


async def _settle(
    hold_id: str,
    action: HoldAction,
    runtime: RuntimeDep,
    clock: ClockDep,
    call: IdempotencyDep,
) -> HoldStateOut | JSONResponse:
    async with runtime.engine.begin() as conn:
        if (replayed := await call.replay(conn, tables.idempotency_keys)) is not None:
            return replayed
        holds = SqlHoldRepository(conn)
        hold = await holds.get_for_update(hold_id)
        if hold is None:
            raise Problem(404, "Not found", f"no hold {hold_id!r}", slug="unknown-hold")
        now = clock.now()
        try:
            done = settle(hold, action, now)
        except HoldSettled as refused:
            raise Problem(
                409,
                "Hold settled",
                str(refused),
                slug="hold-settled",
                status_now=refused.hold.status.value,
            ) from None
        if done.changed:
            await holds.save_settled([done.hold])
            ledger = SqlLedgerRepository(conn)
            if done.gives_back:
                entry, given_back = release(
                    hold.hold_id,
                    hold.customer_id,
                    await ledger.allocations_by([hold.hold_id]),
                    entry_id=f"{hold.hold_id}:{action.value}",
                    reason=f"hold {action.value}",
                    now=now,
                )
                await ledger.record([entry])
                await ledger.record_allocations([(hold.customer_id, a) for a in given_back])
            else:
                await announce_redemption(
                    conn, clock, hold.customer_id, hold.hold_id, hold.points, hold.reward
                )
        answer = _state(done.hold)
        await call.remember(conn, tables.idempotency_keys, 200, answer, now)
    return answer


def _state(hold: Hold) -> HoldStateOut:
    return HoldStateOut(
        hold_id=hold.hold_id,
        customer_id=hold.customer_id,
        points=hold.points,
        reward=hold.reward,
        status=hold.status.value,
        expires_at=hold.expires_at,
        settled_at=hold.settled_at,
    )
