"""A member's insights: RFM, lifecycle, loyalty types and segments, as of an instant."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.insights.api.deps import ClockDep, ReadScope, RulesDep, RuntimeDep
from services.insights.api.schemas import CustomerInsightsOut
from services.insights.usecases import customers as usecases
from shared.bounds import Identifier, InstantIn

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.get("/{customer_id}/insights")
async def customer_insights(
    customer_id: Annotated[Identifier, Path()],
    runtime: RuntimeDep,
    clock: ClockDep,
    rules: RulesDep,
    _: ReadScope,
    as_of: Annotated[InstantIn | None, Query()] = None,
) -> CustomerInsightsOut:
    """The member's insights as of `as_of` (now when left out)."""
    return await usecases.customer_insights(
        runtime.engine, rules, customer_id, as_of or clock.now()
    )
