"""A member's insights as of an instant: computed from the facts on every read (the same
function the consumer and the job use), scored by the last `segments` run's quintiles."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from services.insights.adapters.repositories.api import api_repository
from services.insights.api.schemas import CustomerInsightsOut, LoyaltyTypeOut, RfmOut
from services.insights.domain.features import features
from services.insights.domain.model import Rules
from services.insights.domain.segments import with_segments
from shared.storage.transactions import read_snapshot
from shared.web.problems import Problem


async def customer_insights(
    engine: AsyncEngine, rules: Rules, customer_id: str, as_of: datetime
) -> CustomerInsightsOut:
    async with read_snapshot(engine) as conn:
        repository = api_repository(conn)
        facts = (await repository.facts_of([customer_id], as_of, rules)).get(customer_id)
        breakpoints = await repository.breakpoints()
        custom = await repository.custom_segments()
    if facts is None:
        raise Problem(
            404, "Not found", f"no member {customer_id!r} is known", slug="unknown-customer"
        )
    found = with_segments(features(facts, as_of, rules, breakpoints), custom)
    rfm = found.rfm
    return CustomerInsightsOut(
        customer_id=customer_id,
        as_of=as_of,
        rfm=RfmOut(
            recency_days=rfm.recency_days,
            frequency=rfm.frequency,
            monetary=rfm.monetary,
            r=rfm.r,
            f=rfm.f,
            m=rfm.m,
        ),
        lifecycle=found.lifecycle,
        lifecycle_reason=found.lifecycle_reason,
        loyalty_types=[
            LoyaltyTypeOut(type=kind.type, reasons=list(kind.reasons))
            for kind in found.loyalty_types
        ],
        tier=found.tier,
        segments=sorted(found.segments),
        quintiles_as_of=None if breakpoints is None else breakpoints.as_of,
    )
