"""Sign-in from a receipt's QR code: `/wallet/receipt?c=&p=&e=&s=`, the link ingest signed for a
purchase. A valid one signs the member in with the same cookie as the emailed link; a bad or
expired one answers 410 with the way to ask for an emailed link instead."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.web.api.deps import ClockDep, PolicyDep, RuntimeDep, WebSettingsDep
from services.web.api.pages import render
from services.web.api.routers.wallet_auth import member_signed_in
from services.web.usecases.wallet_receipt import sign_in_with_receipt

router = APIRouter(prefix="/wallet", include_in_schema=False)

# Bounded loosely here; the link's verifier holds each value to its exact form (a bad one is
# a 410 page, like a forged or expired link).
Value = Annotated[str | None, Query(max_length=200)]


@router.get("/receipt")
async def receipt(
    request: Request,
    runtime: RuntimeDep,
    clock: ClockDep,
    policy: PolicyDep,
    settings: WebSettingsDep,
    c: Value = None,
    p: Value = None,
    e: Value = None,
    s: Value = None,
) -> Response:
    params = {k: v for k, v in (("c", c), ("p", p), ("e", e), ("s", s)) if v is not None}
    signed_in = await sign_in_with_receipt(
        runtime.engine, clock, policy, settings.receipt_secret.get_secret_value(), params
    )
    if signed_in is None:
        return render(request, "wallet/receipt_invalid.html", status_code=410)
    return member_signed_in(signed_in, settings, policy)
