"""What the points use cases share: the locked ledger a spend, hold or adjustment starts from,
the spend itself, the refusals they answer with, and the events they announce."""

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from services.points import ports
from services.points.adapters import tables
from services.points.domain.lots import Allocation, NotEnoughPoints, balance_of, spend
from services.points.domain.model import EntryKind, LedgerEntry
from shared.clock import Clock
from shared.messaging import events
from shared.messaging.outbox import EventSink, Outbox, emit
from shared.web.problems import Problem

SOURCE = "points"
KEYS = tables.idempotency_keys


def outbox(conn: AsyncConnection, clock: Clock) -> EventSink:
    """The service's outbox, in the use case's transaction."""
    return Outbox(conn, tables.outbox, clock)


async def locked_ledger(
    ledger: ports.LedgerRepository, customer_id: str
) -> tuple[list[LedgerEntry], list[Allocation]]:
    """The customer's entries and lot draws, with the customer locked until the transaction
    ends, so that two spends at the same moment are decided one after the other; 404 for a
    customer points never heard of."""
    await ledger.lock_customer(customer_id)
    if not await ledger.is_known(customer_id):
        raise unknown_customer(customer_id)
    return await ledger.entries(customer_id), await ledger.allocations_of(customer_id)


async def locked_open_lots(
    ledger: ports.LedgerRepository, customer_id: str, now: datetime
) -> tuple[list[LedgerEntry], list[Allocation]]:
    """`locked_ledger` for a spend (a redemption, a hold): only the lots it may draw on and
    what is left of them, however long the customer's history."""
    await ledger.lock_customer(customer_id)
    if not await ledger.is_known(customer_id):
        raise unknown_customer(customer_id)
    return await ledger.open_lots(customer_id, now)


@dataclass(frozen=True)
class Spent:
    entry_id: str
    available_after: int


async def spend_available(
    ledger: ports.LedgerRepository,
    *,
    kind: EntryKind,
    customer_id: str,
    points: int,
    reason: str,
    now: datetime,
    partner_id: str | None = None,
    store_id: str | None = None,
    reward_id: str | None = None,
) -> Spent:
    """A redemption's or a hold's spend, recorded with the lots it drew from: the customer
    locked, soonest-expiring lots first, 404 for an unknown customer, 409 when not enough.
    The entry names the honouring partner and store (none: the program) and the reward."""
    entries, allocations = await locked_open_lots(ledger, customer_id, now)
    entry_id = str(uuid.uuid4())
    try:
        entry, drawn = spend(
            entries,
            allocations,
            kind=kind,
            entry_id=entry_id,
            customer_id=customer_id,
            points=points,
            reason=reason,
            now=now,
        )
    except NotEnoughPoints as refused:
        raise not_enough(refused) from None
    entry = replace(entry, partner_id=partner_id, store_id=store_id, reward_id=reward_id)
    await ledger.record([entry])
    await ledger.record_allocations([(customer_id, a) for a in drawn])
    after = balance_of(customer_id, [*entries, entry], now, [*allocations, *drawn])
    return Spent(entry_id=entry_id, available_after=after.available)


async def announce_redemption(
    sink: EventSink,
    clock: Clock,
    customer_id: str,
    redemption_id: str,
    points: int,
    reward: str,
    *,
    reward_id: str | None = None,
    partner_id: str | None = None,
    store_id: str | None = None,
) -> None:
    """`points.redeemed` of a redemption, or of a hold captured: with the catalogue's reward
    (none: free-form) and the honouring partner and store (none: an administrator's)."""
    await emit(
        sink,
        events.PointsRedeemed(
            customer_id=customer_id,
            points=points,
            redemption_id=redemption_id,
            reward=reward,
            reward_id=reward_id,
            partner_id=partner_id,
            store_id=store_id,
        ),
        source=SOURCE,
        customer_id=customer_id,
        time=clock.now(),
        cause_id=redemption_id,
        purpose="points-redeemed",
    )


def unknown_customer(customer_id: str) -> Problem:
    return Problem(
        404,
        "Not found",
        f"no points are known for customer {customer_id!r}",
        slug="unknown-customer",
    )


def not_enough(refused: NotEnoughPoints) -> Problem:
    return Problem(
        409,
        "Not enough points",
        f"{refused.wanted} points asked, {refused.available} available",
        slug="not-enough-points",
        available=refused.available,
    )
