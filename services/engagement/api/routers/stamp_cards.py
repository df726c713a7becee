"""Stamp cards: a program manager's rules (admin)."""

from typing import Annotated

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from services.engagement.api.deps import AdminScope, ClockDep, IdempotencyDep, RuntimeDep
from services.engagement.api.schemas import (
    StampCardIn,
    StampCardListOut,
    StampCardOut,
    StampCardPatchIn,
)
from services.engagement.usecases import stamp_cards as usecases
from shared.bounds import Identifier
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/stamp-cards", tags=["stamp cards"], route_class=StrictJsonRoute)

CardId = Annotated[Identifier, Path()]


@router.post("", status_code=201, response_model=StampCardOut)
async def create_stamp_card(
    body: StampCardIn, runtime: RuntimeDep, clock: ClockDep, call: IdempotencyDep, _: AdminScope
) -> StampCardOut | JSONResponse:
    return await usecases.create_stamp_card(runtime.engine, clock, call, body)


@router.get("")
async def list_stamp_cards(runtime: RuntimeDep, _: AdminScope) -> StampCardListOut:
    return await usecases.list_stamp_cards(runtime.engine)


@router.get("/{card_id}")
async def get_stamp_card(card_id: CardId, runtime: RuntimeDep, _: AdminScope) -> StampCardOut:
    return await usecases.get_stamp_card(runtime.engine, card_id)


@router.patch("/{card_id}")
async def update_stamp_card(
    card_id: CardId, patch: StampCardPatchIn, runtime: RuntimeDep, _: AdminScope
) -> StampCardOut:
    """A JSON merge patch of name, reward, ends_at, min_tier, min_amount (409 once ended)."""
    return await usecases.update_stamp_card(runtime.engine, card_id, patch)


@router.delete("/{card_id}", status_code=204, response_class=Response)
async def end_stamp_card(
    card_id: CardId, runtime: RuntimeDep, clock: ClockDep, _: AdminScope
) -> None:
    await usecases.end_stamp_card(runtime.engine, clock, card_id)
