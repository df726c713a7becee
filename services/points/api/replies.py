"""Answers the points routers share: their documented problems, and the locked ledger a
spend, hold or adjustment starts from."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.points.adapters.repository import SqlLedgerRepository
from services.points.domain.lots import Allocation, NotEnoughPoints, balance_of, spend
from services.points.domain.model import EntryKind, LedgerEntry
from shared.web.problems import PROBLEM_JSON, Problem

_MEANINGS = {
    400: "A malformed Idempotency-Key",
    401: "No or an unknown service token",
    403: "The call needs the admin scope",
    404: "Unknown customer or hold",
    409: (
        "Not enough available points, a hold settled otherwise already, "
        "or the Idempotency-Key was used for another request"
    ),
    422: "Invalid request",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"description": _MEANINGS[status], "content": {PROBLEM_JSON: {}}}
        for status in statuses
    }


async def locked_ledger(
    ledger: SqlLedgerRepository, customer_id: str
) -> tuple[list[LedgerEntry], list[Allocation]]:
    """The customer's entries and lot draws, with the customer locked until the transaction
    ends, so that two spends at the same moment are decided one after the other; 404 for a
    customer points never heard of."""
    await ledger.lock_customer(customer_id)
    if not await ledger.is_known(customer_id):
        raise unknown_customer(customer_id)
    return await ledger.entries(customer_id), await ledger.allocations_of(customer_id)


async def locked_open_lots(
    ledger: SqlLedgerRepository, customer_id: str, now: datetime
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
    ledger: SqlLedgerRepository,
    *,
    kind: EntryKind,
    customer_id: str,
    points: int,
    reason: str,
    now: datetime,
) -> Spent:
    """A redemption's or a hold's spend, recorded with the lots it drew from: the customer
    locked, soonest-expiring lots first, 404 for an unknown customer, 409 when not enough."""
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
    await ledger.record([entry])
    await ledger.record_allocations([(customer_id, a) for a in drawn])
    after = balance_of(customer_id, [*entries, entry], now, [*allocations, *drawn])
    return Spent(entry_id=entry_id, available_after=after.available)


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
