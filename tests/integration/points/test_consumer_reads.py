"""What a batch of purchases reads does not grow with a member's history (issue 24): the
velocity guard's read of the day's earnings goes through an index on (customer, instant): the
partial one of migration 0010 or the member's index of migration 0014, whichever the planner
takes for the statistics it has, never through every entry of the buyer."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.points.adapters.repositories import consumer as repository
from services.points.domain.velocity import day_of, next_day
from tests.integration.points.support import NOW

pytestmark = pytest.mark.integration

HISTORY = 1_500


async def test_the_days_earnings_of_a_member_with_a_long_history_are_read_by_the_index(
    engine: AsyncEngine, points: httpx.AsyncClient
) -> None:
    customer = f"c-{uuid.uuid4()}"
    today = day_of(NOW)
    async with engine.connect() as conn:
        transaction = await conn.begin()
        # 1,500 earnings over the 300 days before today, and two today (one held).
        await conn.execute(
            sa.text(
                "INSERT INTO ledger_entries (entry_id, customer_id, kind, points, reason, "
                "occurred_at, available_at, expires_at) "
                "SELECT :customer || '/' || n, :customer, 'earn', 10, 'purchase', "
                "CAST(:today AS timestamptz) - make_interval(days => 1 + n % 300), :today, :today "
                "FROM generate_series(1, :history) n "
                "UNION ALL SELECT :customer || '/today', :customer, 'earn', 7, 'purchase', "
                "CAST(:today AS timestamptz) + interval '1 hour', :today, :today "
                "UNION ALL SELECT :customer || '/held', :customer, 'held', 5, 'purchase', "
                "CAST(:today AS timestamptz) + interval '2 hours', :today, :today"
            ),
            {"customer": customer, "today": today, "history": HISTORY},
        )
        await conn.execute(sa.text("ANALYZE ledger_entries"))
        days = {(customer, today, next_day(today))}
        earned = await repository.SqlConsumerRepository(conn).earned_on(days)
        assert earned == {(customer, today): 12}
        plan = await conn.execute(
            sa.text(f"EXPLAIN {repository._EARNED_ON.text}"),  # our statement
            {"customers": [customer], "days": [today], "ends": [today + timedelta(days=1)]},
        )
        text = "\n".join(row[0] for row in plan)
        assert _day_bounded_index_reads(text), text
        await transaction.rollback()


def _day_bounded_index_reads(plan: str) -> bool:
    """Whether the plan reads the ledger through an index whose condition holds the day's
    bounds (a filter on the instant after an index on the customer alone would not)."""
    lines = plan.splitlines()
    scans = [i for i, line in enumerate(lines) if "ledger_entries l" in line]
    if not scans or any("Seq Scan" in lines[i] for i in scans):
        return False
    conditions = [line for line in lines if "Index Cond" in line]
    return bool(conditions) and all(
        "occurred_at >= k.day" in c and "occurred_at < k.day_end" in c for c in conditions
    )
