"""The member's rewards and coupons: the catalogue with a redeem form per reward (CSRF token
and an Idempotency-Key rendered in it), the coupon page (code and QR) and the coupon list."""

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from services.web.api.deps import CsrfField, MemberDep, ServicesDep, check_csrf
from services.web.api.pages import redirect, render
from services.web.api.routers.wallet import done_notice
from services.web.usecases.wallet_rewards import coupon_page, redeem_reward, rewards_page
from shared.bounds import IDENTIFIER_PATTERN, MAX_ID_LENGTH

router = APIRouter(prefix="/wallet", include_in_schema=False)

RewardId = Annotated[str, Form(min_length=1, max_length=MAX_ID_LENGTH, pattern=IDENTIFIER_PATTERN)]
FormKey = Annotated[
    str, Form(alias="idempotency_key", min_length=16, max_length=64, pattern=r"^[A-Za-z0-9-]+$")
]
CouponId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=IDENTIFIER_PATTERN)]
DONE = ("wallet.redeemed",)


@router.get("/rewards")
async def rewards(request: Request, who: MemberDep, services: ServicesDep) -> HTMLResponse:
    return await _rewards(request, who, services, refusal=None, reasons=(), status_code=200)


async def _rewards(
    request: Request,
    who: MemberDep,
    services: ServicesDep,
    *,
    refusal: str | None,
    reasons: tuple[str, ...],
    status_code: int,
) -> HTMLResponse:
    page = await rewards_page(services, who.actor, who.customer_id)
    context = {"member": who, "page": page, "refusal": refusal, "reasons": reasons}
    return render(
        request,
        "wallet/rewards.html",
        context,
        status_code=status_code,
        csrf_token=who.csrf_token,
    )


@router.post("/rewards/redeem")
async def redeem(
    request: Request,
    who: MemberDep,
    services: ServicesDep,
    csrf: CsrfField,
    reward_id: RewardId,
    key: FormKey,
) -> Response:
    check_csrf(csrf, who.csrf_token)
    outcome = await redeem_reward(
        services, who.actor, who.customer_id, reward_id=reward_id, key=key
    )
    if outcome.coupon_id is not None:
        return redirect(f"/wallet/coupons/{outcome.coupon_id}?done=wallet.redeemed")
    return await _rewards(
        request,
        who,
        services,
        refusal=outcome.refusal,
        reasons=outcome.reasons,
        status_code=outcome.status,
    )


@router.get("/coupons/{coupon_id}")
async def coupon(
    request: Request, coupon_id: CouponId, who: MemberDep, services: ServicesDep
) -> HTMLResponse:
    view = await coupon_page(services, who.actor, who.customer_id, coupon_id)
    if view is None:
        missing = {"message_key": "error.not_found", "service": ""}
        return render(request, "error.html", missing, status_code=404)
    context = {"member": who, "view": view, "done": done_notice(request, DONE)}
    return render(request, "wallet/coupon.html", context, csrf_token=who.csrf_token)
