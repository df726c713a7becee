"""What every accepted POS call shares: its event goes to the outbox in the call's own
transaction, a retry under the same natural id gets the first answer, and another call
reusing that id is a 409."""

from collections.abc import Awaitable, Callable

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest.adapters import tables
from services.ingest.api.schemas import AcceptedOut
from services.ingest.domain.model import Accepted, is_retry
from shared.clock import Clock
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import Outbox
from shared.runtime.process import Runtime
from shared.web.idempotency import IdempotentCall, run_keyed
from shared.web.problems import Problem

# The status of every state-changing POS call that was accepted: stored with its event.
ACCEPTED = 202

# An accepted call's answer, or the first answer again (Idempotent-Replayed) for a retry.
Answer = AcceptedOut | JSONResponse


def source_of(partner_id: str) -> str:
    """The events' source: who made the call."""
    return f"ingest/partner/{partner_id}"


def replay_or_conflict(
    previous: Accepted, current_hash: str, *, what: str, hint: str
) -> AcceptedOut:
    """The first answer again for a retry; a 409 when the id is reused for another call."""
    if is_retry(previous, current_hash):
        return AcceptedOut(event_id=previous.event_id)
    raise Problem(
        409,
        "Conflict",
        f"{what} was already accepted with a different body; {hint}",
        slug="idempotency-conflict",
    )


async def accept(
    conn: AsyncConnection, event: CloudEvent, *, customer_id: str, clock: Clock
) -> AcceptedOut:
    """What accepting a POS call means, in the call's own transaction: its event goes to the
    outbox, keyed by customer (run_keyed then keeps the answer under the call's key)."""
    await Outbox(conn, tables.outbox, clock).add(event, key=customer_id)
    return AcceptedOut(event_id=event.id)


async def keyed(
    runtime: Runtime,
    call: IdempotentCall,
    work: Callable[[AsyncConnection], Awaitable[AcceptedOut]],
) -> Answer:
    """A POS call on its own: one transaction through `run_keyed` (the kept answer replayed,
    else `work`'s answer kept under the call's key), then the relay woken for the event (a
    replay wakes it for nothing, which costs nothing)."""
    answer = await run_keyed(
        runtime.engine,
        call,
        tables.idempotency_keys,
        status_code=ACCEPTED,
        clock=runtime.clock,
        work=work,
    )
    runtime.relay.notify()
    return answer
