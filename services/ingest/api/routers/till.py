"""A till's calls about points, signed like every POS call and relayed to points
(`usecases/till.py`): the answer is points' own (status, JSON body, `Retry-After`,
`Idempotent-Replayed`), or ingest's problem when points could not give one."""

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response

from services.ingest.api.deps import (
    PointsGatewayDep,
    PosCallDep,
    SignatureDep,
    TillSignaturesDep,
)
from services.ingest.api.schemas import (
    CouponCode,
    CouponRedeemIn,
    Identifier,
    TillHoldIn,
    TillRedemptionIn,
)
from services.ingest.domain.till import Relayed
from services.ingest.usecases import till
from shared.web.problems import PROBLEM_JSON
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1", tags=["till"], route_class=StrictJsonRoute)

CustomerId = Annotated[Identifier, Path()]
HoldId = Annotated[Identifier, Path()]


def _responses(success: int, meaning: str, *relayed: int) -> dict[int | str, dict[str, Any]]:
    """The answers of a till route: points' own (relayed as they are: status, JSON or
    problem+json body, Retry-After, Idempotent-Replayed) and ingest's when points could not
    give one (docs/operations.md, *Till calls*)."""
    problem: dict[str, Any] = {PROBLEM_JSON: {}}
    documented: dict[int | str, dict[str, Any]] = {
        success: {"description": f"{meaning} (points' answer, relayed)"},
        400: {"description": "A malformed Idempotency-Key", "content": problem},
        401: {
            "description": "Unknown or inactive API key, or a missing, stale or wrong signature",
            "content": problem,
        },
        422: {"description": "Invalid request", "content": problem},
        502: {
            "description": "points failed (`points-failed`), answered no JSON "
            "(`points-bad-answer`) or refused ingest's own token (`points-misconfigured`): "
            "retry with the same Idempotency-Key",
            "content": problem,
        },
        503: {
            "description": "points-unavailable (nothing was done: retry later), "
            "points-outcome-unknown (retry with the same Idempotency-Key), or "
            "till-not-configured; with Retry-After",
            "content": problem,
        },
    }
    for status in relayed:
        documented[status] = {"description": "Points' refusal, relayed", "content": problem}
    return documented


def _spending_responses(meaning: str) -> dict[int | str, dict[str, Any]]:
    """A redemption's or a hold's answers: a 409 is points' refusal, or ingest's own when the
    same signed request came before under another Idempotency-Key (`domain/till_replays.py`)."""
    documented = _responses(201, meaning, 404, 409, 428)
    documented[409] = {
        "description": "Points' refusal, relayed; or `signature-replayed`: this signed request "
        "was already sent under another Idempotency-Key (nothing was done: sign a new request)",
        "content": {PROBLEM_JSON: {}},
    }
    return documented


def _render(answer: Relayed) -> Response:
    return Response(
        answer.body, status_code=answer.status, media_type=answer.media_type, headers=answer.headers
    )


@router.get(
    "/customers/{customer_id}/balance",
    responses=_responses(200, "The balance the till shows", 404),
)
async def get_balance(
    customer_id: CustomerId, pos: PosCallDep, points: PointsGatewayDep
) -> Response:
    return _render(await till.balance(points, pos.settings, pos.partner, customer_id))


@router.get(
    "/customers/{customer_id}/rewards",
    responses=_responses(200, "What the member may redeem now, and why not the rest", 404),
)
async def get_customer_rewards(
    customer_id: CustomerId, pos: PosCallDep, points: PointsGatewayDep
) -> Response:
    return _render(await till.customer_rewards(points, pos.settings, pos.partner, customer_id))


@router.post(
    "/customers/{customer_id}/redemptions",
    status_code=201,
    responses=_spending_responses("Redeemed (a reward's coupon with it)"),
)
async def redeem(
    customer_id: CustomerId,
    body: TillRedemptionIn,
    pos: PosCallDep,
    points: PointsGatewayDep,
    signatures: TillSignaturesDep,
    signature: SignatureDep,
) -> Response:
    """A free-form redemption `{"points", "reward"}` or a reward `{"reward_id"}` (its coupon in
    the answer). Requires an Idempotency-Key (428 `idempotency-key-required` without): a
    till retries a lost answer with it, as the same request or a newly signed one. The same
    signed request under another key is 409 `signature-replayed`: nothing is done."""
    answer = await till.redeem(
        points,
        pos.settings,
        pos.partner,
        customer_id,
        body,
        pos.idempotency.key,
        signatures=signatures,
        signature=signature,
    )
    return _render(answer)


@router.post(
    "/customers/{customer_id}/holds",
    status_code=201,
    responses=_spending_responses("Points reserved"),
)
async def place_hold(
    customer_id: CustomerId,
    body: TillHoldIn,
    pos: PosCallDep,
    points: PointsGatewayDep,
    signatures: TillSignaturesDep,
    signature: SignatureDep,
) -> Response:
    """Points reserved before the payment completes. Requires an Idempotency-Key (428
    `idempotency-key-required` without); the same signed request under another key is 409
    `signature-replayed`."""
    answer = await till.place_hold(
        points,
        pos.settings,
        pos.partner,
        customer_id,
        body,
        pos.idempotency.key,
        signatures=signatures,
        signature=signature,
    )
    return _render(answer)


@router.post("/holds/{hold_id}/capture", responses=_responses(200, "Captured", 404, 409))
async def capture_hold(hold_id: HoldId, pos: PosCallDep, points: PointsGatewayDep) -> Response:
    answer = await till.settle_hold(
        points, pos.settings, pos.partner, hold_id, "capture", pos.idempotency.key
    )
    return _render(answer)


@router.post("/holds/{hold_id}/void", responses=_responses(200, "Voided", 404, 409))
async def void_hold(hold_id: HoldId, pos: PosCallDep, points: PointsGatewayDep) -> Response:
    answer = await till.settle_hold(
        points, pos.settings, pos.partner, hold_id, "void", pos.idempotency.key
    )
    return _render(answer)


@router.post(
    "/coupons/{code}/redeem",
    responses=_responses(
        200,
        "Used now: 403 another partner's reward, 404 unknown, 409 used, 410 expired",
        403,
        404,
        409,
        410,
    ),
)
async def redeem_coupon(
    code: Annotated[CouponCode, Path()],
    pos: PosCallDep,
    points: PointsGatewayDep,
    body: CouponRedeemIn | None = None,
) -> Response:
    """Uses the coupon once: 200; then 409 `coupon-used`, 410 `coupon-expired`, 404
    `unknown-coupon`, 403 `another-partners-reward` (points' problems, relayed). The code is
    bounded here (4-64 letters, digits, - and _) and never logged."""
    answer = await till.redeem_coupon(
        points, pos.settings, pos.partner, code, body or CouponRedeemIn(), pos.idempotency.key
    )
    return _render(answer)
