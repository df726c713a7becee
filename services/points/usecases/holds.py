"""Holds for POS terminals: points reserved before the payment completes, then captured,
voided, or lapsed by the `lapse-holds` job after the program's timeout."""

from datetime import datetime, timedelta

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.points import ports
from services.points.adapters.repositories.api import hold_repository, ledger_repository
from services.points.api.schemas import HoldIn, HoldOut, HoldStateOut
from services.points.domain.holds import (
    Hold,
    HoldAction,
    HoldSettled,
    Settlement,
    of_the_till,
    settle,
)
from services.points.domain.lots import release
from services.points.domain.model import EntryKind, Program
from services.points.usecases.common import KEYS, announce_redemption, outbox, spend_available
from shared.clock import Clock
from shared.web.deps import Caller
from shared.web.idempotency import IdempotentCall, run_keyed
from shared.web.problems import Problem


async def place_hold(
    engine: AsyncEngine,
    clock: Clock,
    program: Program,
    call: IdempotentCall,
    caller: Caller,
    customer_id: str,
    body: HoldIn,
) -> HoldOut | JSONResponse:
    """Draws the points like a redemption and keeps them held until the program's timeout;
    a till's partner and store are kept on the spend and the hold, for its capture."""

    async def work(conn: AsyncConnection) -> HoldOut:
        now = clock.now()
        spent = await spend_available(
            ledger_repository(conn),
            kind=EntryKind.HOLD,
            customer_id=customer_id,
            points=body.points,
            reason=body.reward,
            now=now,
            partner_id=caller.partner_id,
            store_id=caller.store_id,
        )
        hold = Hold(
            hold_id=spent.entry_id,
            customer_id=customer_id,
            points=body.points,
            reward=body.reward,
            created_at=now,
            expires_at=now + timedelta(minutes=program.hold_timeout_minutes),
            partner_id=caller.partner_id,
            store_id=caller.store_id,
        )
        await hold_repository(conn).add(hold)
        return HoldOut(hold_id=hold.hold_id, points=hold.points, expires_at=hold.expires_at)

    return await run_keyed(engine, call, KEYS, status_code=201, clock=clock, work=work)


async def settle_hold(
    engine: AsyncEngine,
    clock: Clock,
    call: IdempotentCall,
    caller: Caller,
    hold_id: str,
    action: HoldAction,
) -> HoldStateOut | JSONResponse:
    """Captures (`points.redeemed`) or voids (the points back to their lots) a hold once;
    404 for an unknown hold (at a till: one another partner's till placed), 409 for one
    settled otherwise already."""

    async def work(conn: AsyncConnection) -> HoldStateOut:
        holds = hold_repository(conn)
        hold = await holds.get_for_update(hold_id)
        if hold is None or (caller.scope == "till" and hold.partner_id != caller.partner_id):
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
            await _settled(conn, clock, hold, action, done, now)
        return _state(done.hold)

    return await run_keyed(engine, call, KEYS, status_code=200, clock=clock, work=work)


async def _settled(
    conn: AsyncConnection,
    clock: Clock,
    hold: Hold,
    action: HoldAction,
    done: Settlement,
    now: datetime,
) -> None:
    """What a settlement does besides the hold's new status: a void gives its points back to
    the lots they came from, a capture announces the redemption."""
    if done.gives_back:
        ledger: ports.LedgerRepository = ledger_repository(conn)
        entry, given_back = release(
            hold.hold_id,
            hold.customer_id,
            await ledger.allocations_by([hold.hold_id]),
            entry_id=f"{hold.hold_id}:{action.value}",
            reason=f"hold {action.value}",
            now=now,
        )
        await ledger.record([of_the_till(entry, hold)])
        await ledger.record_allocations([(hold.customer_id, a) for a in given_back])
    else:
        await announce_redemption(
            outbox(conn, clock),
            clock,
            hold.customer_id,
            hold.hold_id,
            hold.points,
            hold.reward,
            partner_id=hold.partner_id,
            store_id=hold.store_id,
        )


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
