"""A member's stamp cards, challenges and badges (read)."""

from typing import Annotated

from fastapi import APIRouter, Path

from services.engagement.api.deps import ClockDep, ReadScope, RuntimeDep
from services.engagement.api.schemas import BadgesOut, MemberChallengesOut, MemberStampCardsOut
from services.engagement.usecases import customers as usecases
from shared.bounds import Identifier

router = APIRouter(prefix="/v1/customers", tags=["customers"])

CustomerId = Annotated[Identifier, Path()]


@router.get("/{customer_id}/stamp-cards")
async def stamp_cards(
    customer_id: CustomerId, runtime: RuntimeDep, clock: ClockDep, _: ReadScope
) -> MemberStampCardsOut:
    return await usecases.stamp_cards_of(runtime.engine, customer_id, clock.now())


@router.get("/{customer_id}/challenges")
async def challenges(
    customer_id: CustomerId, runtime: RuntimeDep, clock: ClockDep, _: ReadScope
) -> MemberChallengesOut:
    return await usecases.challenges_of(runtime.engine, customer_id, clock.now())


@router.get("/{customer_id}/badges")
async def badges(customer_id: CustomerId, runtime: RuntimeDep, _: ReadScope) -> BadgesOut:
    return await usecases.badges_of(runtime.engine, customer_id)
