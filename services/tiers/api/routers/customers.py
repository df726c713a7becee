"""A customer's tier and their progress towards the next one."""

from typing import Annotated

from fastapi import APIRouter, Path

from services.tiers.api.deps import ClockDep, ProgramDep, ReadScope, TiersDep
from services.tiers.api.schemas import CustomerTierOut
from services.tiers.domain.model import progress, qualifying_spend
from shared.bounds import Identifier
from shared.problems import Problem

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.get("/{customer_id}/tier")
async def get_tier(
    customer_id: Annotated[Identifier, Path()],
    tiers: TiersDep,
    program: ProgramDep,
    clock: ClockDep,
    _: ReadScope,
) -> CustomerTierOut:
    customer = await tiers.customer(customer_id)
    if customer is None:
        raise Problem(
            404,
            "Not found",
            f"no tier is known for customer {customer_id!r}",
            slug="unknown-customer",
        )
    now = clock.now()
    activities = await tiers.activities(customer_id, since=program.earliest_counted(now))
    standing = progress(program, customer.tier, qualifying_spend(program, activities, now))
    return CustomerTierOut(
        customer_id=customer.customer_id,
        tier=customer.tier,
        since=customer.since,
        qualifying_spend=standing.qualifying_spend,
        next_tier=standing.next_tier,
        amount_to_next_tier=standing.amount_to_next_tier,
        review_at=customer.review_at,
    )
