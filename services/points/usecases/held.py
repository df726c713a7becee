"""Earnings the velocity guard held for review: staff release them (they become a lot, and
repay debt first) or reject them, once."""

from datetime import datetime
from typing import Literal

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.points import ports
from services.points.adapters.repositories.api import ledger_repository
from services.points.api.schemas import HeldDecisionOut
from services.points.domain.model import LedgerEntry
from services.points.domain.refunds import repay_debt
from services.points.domain.velocity import released
from services.points.usecases.common import KEYS, SOURCE, outbox
from shared.clock import Clock
from shared.messaging import events
from shared.messaging.outbox import EventSink, emit
from shared.web.idempotency import IdempotentCall, run_keyed
from shared.web.problems import Problem

Decision = Literal["released", "rejected"]


async def decide_held(
    engine: AsyncEngine, clock: Clock, call: IdempotentCall, held_id: str, decision: Decision
) -> HeldDecisionOut | JSONResponse:
    """Records staff's decision once (the same decision again answers as the first did; the
    other one is a 409); a release grants what refunds left of the held earning."""

    async def work(conn: AsyncConnection) -> HeldDecisionOut:
        ledger = ledger_repository(conn)
        held = await ledger.held_earning(held_id)
        if held is None:
            raise Problem(404, "Not found", f"no held earning {held_id!r}", slug="unknown-held")
        await ledger.lock_customer(held.customer_id)
        now = clock.now()
        decided_at = await ledger.decide_held(held, decision, now)
        if decided_at is None:
            decided_at = await _decided_before(ledger, held_id, decision)
        elif decision == "released":
            await _release(ledger, outbox(conn, clock), held, now)
        return HeldDecisionOut(
            held_id=held_id,
            customer_id=held.customer_id,
            points=held.points,
            decision=decision,
            decided_at=decided_at,
        )

    return await run_keyed(engine, call, KEYS, status_code=200, clock=clock, work=work)


async def _decided_before(
    ledger: ports.LedgerRepository, held_id: str, decision: Decision
) -> datetime:
    """When the same decision was taken before; 409 when the other one was."""
    earlier = await ledger.held_decision(held_id)
    if earlier.decision != decision:
        raise Problem(
            409,
            "Already decided",
            f"held earning {held_id!r} was {earlier.decision} already",
            slug="held-decided",
            decision=earlier.decision,
        )
    return earlier.decided_at


async def _release(
    ledger: ports.LedgerRepository, sink: EventSink, held: ports.HeldEarning, now: datetime
) -> None:
    entries = await ledger.entries(held.customer_id)
    entry = next(e for e in entries if e.entry_id == held.held_id)
    allocations = await ledger.allocations_of(held.customer_id)
    # Refunds of the purchase take its held part first: only the rest is released.
    taken_back = sum(a.points for a in allocations if a.lot_id == held.held_id)
    lot = released(entry, now=now, taken_back=taken_back)
    if lot is None:
        return
    # The released lot repays debt first.
    repaid = repay_debt([*entries, lot], allocations, now)
    await ledger.record([lot])
    await ledger.record_allocations([(lot.customer_id, a) for a in repaid])
    await _announce(sink, lot, now)


async def _announce(sink: EventSink, lot: LedgerEntry, now: datetime) -> None:
    assert lot.expires_at is not None
    await emit(
        sink,
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
