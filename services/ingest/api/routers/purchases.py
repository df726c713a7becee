"""Purchases and refunds, reported by a partner's POS."""

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from services.ingest.api.deps import PosCallDep
from services.ingest.api.replies import problem_responses
from services.ingest.api.schemas import (
    AcceptedOut,
    Identifier,
    PurchaseAcceptedOut,
    PurchaseIn,
    RefundIn,
)
from services.ingest.usecases import purchases
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/purchases", tags=["purchases"], route_class=StrictJsonRoute)


# Without the receipt's link its answer is an AcceptedOut, rendered without `wallet_url`.
@router.post(
    "",
    status_code=202,
    response_model=PurchaseAcceptedOut,
    response_model_exclude_none=True,
    responses=problem_responses(401, 409, 422),
)
async def report_purchase(purchase: PurchaseIn, pos: PosCallDep) -> AcceptedOut | JSONResponse:
    return await purchases.report_purchase(
        pos.groups, pos.settings, pos.partner, purchase, pos.idempotency, pos.now
    )


@router.post(
    "/{purchase_id}/refunds",
    status_code=202,
    response_model=AcceptedOut,
    responses=problem_responses(401, 409, 422),
)
async def report_refund(
    purchase_id: Annotated[Identifier, Path()], refund: RefundIn, pos: PosCallDep
) -> AcceptedOut | JSONResponse:
    return await purchases.report_refund(
        pos.runtime, pos.settings, pos.partner, purchase_id, refund, pos.idempotency, pos.now
    )
