"""The database's activity of a member (one SQL statement for a set of members) against its
definition in Python (`domain.activity.activity_of`): the same figures for any purchases,
refunds (partial, whole, after the instant) and campaign boosts. Each example is written
through the consumer's repository in a transaction that is rolled back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from services.insights.adapters.repositories.consumer import consumer_repository
from services.insights.domain.activity import activity_of
from services.insights.domain.model import Purchase, Rules
from services.insights.ports import CampaignPurchase, Facts, PurchaseFact, RefundFact

pytestmark = pytest.mark.integration

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
RULES = Rules()

purchase_shapes = st.lists(
    st.tuples(
        st.integers(0, 800),  # days before AS_OF (negative: none, all are by AS_OF or after)
        st.integers(0, 23),  # hour
        st.sampled_from(["p1", "p2"]),
        st.sampled_from([None, "s1", "s2"]),
        st.integers(1, 200),  # total
        st.sampled_from([0, 0, 5, 1000]),  # refunded (1000: the whole of it)
        st.booleans(),  # a campaign boosted it
        st.booleans(),  # the refund came after AS_OF
    ),
    max_size=12,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(shapes=purchase_shapes, later=st.integers(0, 3))
async def test_the_sql_activity_is_the_python_definition(
    engine: AsyncEngine,
    shapes: list[tuple[int, int, str, str | None, int, int, bool, bool]],
    later: int,
) -> None:
    customer = f"activity-sql-{uuid.uuid4()}"
    facts, expected = _facts(customer, shapes, later)
    async with engine.connect() as conn:
        transaction = await conn.begin()
        repository = consumer_repository(conn)
        await repository.lock_members([customer])
        await repository.record(facts)
        found = (await repository.facts_of([customer], AS_OF, RULES))[customer].activity
        await transaction.rollback()
    want = activity_of(expected, AS_OF, RULES.window, RULES.lapse)
    assert abs(found.rhythm_variation - want.rhythm_variation) <= Decimal("0.0001")
    assert found.__class__(**{**found.__dict__, "rhythm_variation": want.rhythm_variation}) == want


def _facts(
    customer: str, shapes: list[tuple[int, int, str, str | None, int, int, bool, bool]], later: int
) -> tuple[Facts, list[Purchase]]:
    facts = Facts([], [], [], [], [], [], [], [], [])
    expected = []
    for n, (days, hour, partner, store, total, refund, boosted, refunded_late) in enumerate(shapes):
        at = AS_OF - timedelta(days=days, hours=hour) + timedelta(days=later * (n % 2))
        key = f"{partner}:{customer}-{n}"
        facts.purchases.append(
            PurchaseFact(key, customer, f"{customer}-{n}", partner, store, at, Decimal(total))
        )
        amount = Decimal(min(refund, total))
        refunded_at = AS_OF + timedelta(hours=1) if refunded_late else at + timedelta(hours=1)
        if amount:
            facts.refunds.append(RefundFact(f"{key}-r", key, customer, amount, refunded_at))
        if boosted:
            facts.campaign_purchases.append(CampaignPurchase(customer, f"{customer}-{n}"))
        counted = amount if amount and refunded_at <= AS_OF else Decimal(0)
        expected.append(Purchase(key, at, partner, store, Decimal(total), counted, boosted))
    return facts, expected
