"""What a batch of purchases reads does not grow with a member's history (issue 24): the
velocity guard reads the day's quarter-hour sums that the ledger's insert keeps (migration
0015), through their key, bounded to the day; never the member's entries."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.points.adapters.repositories import consumer as repository
from services.points.domain.model import EntryKind, LedgerEntry
from services.points.domain.velocity import day_of, next_day, released_id
from shared.storage.batches import texts
from tests.integration.points.support import NOW

pytestmark = pytest.mark.integration

HISTORY = 1_500


def _entry(customer: str, entry_id: str, kind: EntryKind, points: int, at: datetime) -> LedgerEntry:
    return LedgerEntry(entry_id, customer, kind, points, "purchase", at, at, at)


async def test_the_days_earnings_are_the_sums_the_ledgers_insert_keeps(
    engine: AsyncEngine, points: httpx.AsyncClient
) -> None:
    customer = f"c-{uuid.uuid4()}"
    today = day_of(NOW)
    history = [
        _entry(customer, f"{customer}/{n}", EntryKind.EARN, 10, today - timedelta(days=1 + n % 300))
        for n in range(HISTORY)
    ]
    held = f"{customer}/held"
    todays = [
        _entry(customer, f"{customer}/today", EntryKind.EARN, 7, today + timedelta(hours=1)),
        _entry(customer, held, EntryKind.HELD, 5, today + timedelta(hours=2)),
        # Released by staff: the day counts its held twin only.
        _entry(customer, released_id(held), EntryKind.EARN, 5, today + timedelta(hours=2)),
        _entry(customer, f"{customer}/bonus", EntryKind.BONUS, 100, today + timedelta(hours=1)),
        _entry(customer, f"{customer}/tomorrow", EntryKind.EARN, 9, next_day(today)),
    ]
    async with engine.connect() as conn:
        transaction = await conn.begin()
        ledger = repository.SqlConsumerRepository(conn)
        await ledger.record(history)
        await ledger.record(todays)
        await ledger.record(todays[:2])  # recorded again: adds nothing
        await conn.execute(sa.text("ANALYZE earned_quarter_hours"))
        days = {(customer, today, next_day(today))}
        assert await ledger.earned_on(days) == {(customer, today): 12}
        plan = await conn.execute(
            sa.text(f"EXPLAIN {repository._EARNED_ON.text}"),  # our statement
            {"customers": texts([customer]), "days": [today], "ends": [next_day(today)]},
        )
        text = "\n".join(row[0] for row in plan)
        assert _day_bounded_key_reads(text), text
        await transaction.rollback()


def _day_bounded_key_reads(plan: str) -> bool:
    """Whether the plan reads the quarter-hour sums through their key, with the day's bounds
    in the index condition, and never the ledger."""
    lines = plan.splitlines()
    scans = [line for line in lines if "earned_quarter_hours q" in line]
    conditions = [line for line in lines if "Index Cond" in line]
    return (
        bool(scans)
        and not any("Seq Scan" in line or "ledger_entries" in line for line in lines)
        and bool(conditions)
        and all("quarter >= k.day" in c and "quarter < k.day_end" in c for c in conditions)
    )
