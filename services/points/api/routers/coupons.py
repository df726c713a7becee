"""Coupons: taken once at a till (through ingest) or by an administrator; read with their
code by notifications (to send it) and staff."""

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from services.points.api.deps import (
    AdminOrTillCaller,
    CatalogueDep,
    ClockDep,
    LedgerDep,
    ReadScope,
    RuntimeDep,
)
from services.points.api.problems import problems
from services.points.api.schemas import (
    CouponOut,
    CouponRedeemedOut,
    CouponRedeemIn,
    CustomerCouponsOut,
)
from services.points.usecases import coupons as usecases
from shared.bounds import Identifier
from shared.web.idempotency import IdempotencyDep
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1", tags=["coupons"], route_class=StrictJsonRoute)

# As printed (XXXX-XXXX-XXXX-XXXX) or typed: any case, dashes or not; bounded before lookup.
CouponCode = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-]+$")]


@router.post(
    "/coupons/{code}/redeem",
    response_model=CouponRedeemedOut,
    responses=problems(400, 401, 403, 404, 409, 410, 422),
)
async def redeem_coupon(
    code: CouponCode,
    body: CouponRedeemIn,
    runtime: RuntimeDep,
    clock: ClockDep,
    call: IdempotencyDep,
    caller: AdminOrTillCaller,
) -> CouponRedeemedOut | JSONResponse:
    return await usecases.redeem_coupon(runtime.engine, clock, call, caller, code, body)


@router.get("/coupons/{coupon_id}", responses=problems(401, 403, 404, 422))
async def get_coupon(
    coupon_id: Annotated[Identifier, Path()],
    catalogue: CatalogueDep,
    clock: ClockDep,
    _: ReadScope,
) -> CouponOut:
    return await usecases.get_coupon(catalogue, coupon_id, clock.now())


@router.get("/customers/{customer_id}/coupons", responses=problems(401, 403, 404, 422))
async def customer_coupons(
    customer_id: Annotated[Identifier, Path()],
    ledger: LedgerDep,
    catalogue: CatalogueDep,
    clock: ClockDep,
    _: ReadScope,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CustomerCouponsOut:
    return await usecases.customer_coupons(ledger, catalogue, customer_id, clock.now(), limit)
