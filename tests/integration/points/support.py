"""Helpers the points integration modules share: customers with lots, the events of a
customer's story with fixed times, and a batch applied as the consumer applies it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from services.points.adapters.repositories.consumer import consumer_repository
from services.points.domain.model import EntryKind, LedgerEntry, Program
from services.points.handlers import Context, apply_batch
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from tests.support import factories

NOW = datetime.now(UTC).replace(microsecond=0)


async def customer_with_lots(engine: AsyncEngine, *lots: tuple[int, int]) -> str:
    """A new customer holding lots of (points, days until expiry), available now."""
    customer = f"c-{uuid.uuid4()}"
    entries = [
        LedgerEntry(
            entry_id=f"{customer}/lot{n}",
            customer_id=customer,
            kind=EntryKind.EARN,
            points=points,
            reason="purchase",
            occurred_at=NOW - timedelta(days=1),
            available_at=NOW - timedelta(days=1),
            expires_at=NOW + timedelta(days=days),
        )
        for n, (points, days) in enumerate(lots)
    ]
    async with engine.begin() as conn:
        await consumer_repository(conn).record(entries)
    return customer


async def apply(
    engine: AsyncEngine, batch: Sequence[CloudEvent], program: Program | None = None
) -> CollectingSink:
    """Applies the batch in one transaction at NOW, as the consumer does; what it emitted."""
    sink = CollectingSink()
    async with engine.begin() as conn:
        context = Context(
            ledger=consumer_repository(conn), sink=sink, program=program or Program(), now=NOW
        )
        await apply_batch(batch, context)
    return sink


def enrolled(customer: str, referred_by: str | None = None) -> CloudEvent:
    return factories.enrolment(
        customer, at=NOW, enrolled_at=NOW - timedelta(days=1), referred_by=referred_by
    )


def purchase(customer: str, purchase_id: str, total: str) -> CloudEvent:
    return factories.purchase(
        customer,
        total,
        at=NOW,
        occurred_at=NOW - timedelta(hours=1),
        purchase_id=f"{customer}.{purchase_id}",  # purchase ids are unique per partner
    )


def refund(customer: str, purchase_id: str, refund_id: str, amount: str) -> CloudEvent:
    return factories.refund(
        customer,
        f"{customer}.{purchase_id}",
        amount,
        refund_id=f"{customer}.{refund_id}",
        at=NOW,
        occurred_at=NOW - timedelta(minutes=30),
    )
