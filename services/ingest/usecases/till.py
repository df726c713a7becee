"""A till's calls about points (product §7): balance, what the member may redeem, redemptions,
holds with capture and void, coupons. Relayed to points on the partner's behalf.

Ingest authenticates the partner (the routers' `PosCallDep`, exactly as for purchases),
bounds the call (`api/schemas.py`), and calls points through the `PointsGateway` with the
partner's id and the store the till named; points' Idempotency-Key (forwarded as the till
sent it; points scopes it by its till token and the partner) is the only one. A call that
spends or reserves points (a redemption, a hold) must carry a key, and its signature is
remembered with that key before it goes to points, so that the same signed call is never
sent again under another key (`domain/till_replays.py`: 409 `signature-replayed`); capture,
void and a coupon's redemption are idempotent by their id and may come without one. What
points answers is passed on, or replaced by a problem that says what to do next
(`domain/till.py`); see docs/operations.md, "When points is away".
"""

from __future__ import annotations

import logging

from services.ingest.api.schemas import CouponRedeemIn, TillHoldIn, TillRedemptionIn
from services.ingest.domain.model import Partner
from services.ingest.domain.till import (
    Relayed,
    TillFailure,
    key_required,
    not_configured,
    outcome_unknown,
    relayed,
    unreachable,
)
from services.ingest.domain.till_replays import Signature, SignedCall, signature_replayed
from services.ingest.ports import (
    PointsGateway,
    PointsOutcomeUnknown,
    PointsUnreachable,
    TillCall,
    TillSignatures,
)
from services.ingest.settings import IngestSettings

log = logging.getLogger(__name__)


async def balance(
    gateway: PointsGateway | None, settings: IngestSettings, partner: Partner, customer_id: str
) -> Relayed:
    call = TillCall("GET", f"/v1/customers/{customer_id}/balance", partner.partner_id)
    return await relay(gateway, settings, call)


async def customer_rewards(
    gateway: PointsGateway | None, settings: IngestSettings, partner: Partner, customer_id: str
) -> Relayed:
    call = TillCall("GET", f"/v1/customers/{customer_id}/rewards", partner.partner_id)
    return await relay(gateway, settings, call)


async def redeem(
    gateway: PointsGateway | None,
    settings: IngestSettings,
    partner: Partner,
    customer_id: str,
    redemption: TillRedemptionIn,
    idempotency_key: str | None,
    *,
    signatures: TillSignatures,
    signature: Signature,
) -> Relayed:
    if idempotency_key is None:
        raise key_required()
    call = TillCall(
        "POST",
        f"/v1/customers/{customer_id}/redemptions",
        partner.partner_id,
        store_id=redemption.store_id,
        idempotency_key=idempotency_key,
        body=redemption.for_points(),
    )
    return await relay_once(gateway, settings, call, signatures, signature)


async def place_hold(
    gateway: PointsGateway | None,
    settings: IngestSettings,
    partner: Partner,
    customer_id: str,
    hold: TillHoldIn,
    idempotency_key: str | None,
    *,
    signatures: TillSignatures,
    signature: Signature,
) -> Relayed:
    if idempotency_key is None:
        raise key_required()
    call = TillCall(
        "POST",
        f"/v1/customers/{customer_id}/holds",
        partner.partner_id,
        store_id=hold.store_id,
        idempotency_key=idempotency_key,
        body=hold.for_points(),
    )
    return await relay_once(gateway, settings, call, signatures, signature)


async def settle_hold(
    gateway: PointsGateway | None,
    settings: IngestSettings,
    partner: Partner,
    hold_id: str,
    action: str,
    idempotency_key: str | None,
) -> Relayed:
    """`action` is `capture` or `void` (the routers name it): settling a settled hold the
    same way answers as the first time, so no key is needed."""
    assert action in ("capture", "void")
    call = TillCall(
        "POST", f"/v1/holds/{hold_id}/{action}", partner.partner_id, idempotency_key=idempotency_key
    )
    return await relay(gateway, settings, call)


async def redeem_coupon(
    gateway: PointsGateway | None,
    settings: IngestSettings,
    partner: Partner,
    code: str,
    use: CouponRedeemIn,
    idempotency_key: str | None,
) -> Relayed:
    """A coupon is used once: a second use is points' 409 `coupon-used`, so a till that lost
    the first answer learns it was used (a key, when sent, replays the first answer)."""
    call = TillCall(
        "POST",
        f"/v1/coupons/{code}/redeem",
        partner.partner_id,
        store_id=use.store_id,
        idempotency_key=idempotency_key,
        body=use.for_points(),
    )
    return await relay(gateway, settings, call)


async def relay_once(
    gateway: PointsGateway | None,
    settings: IngestSettings,
    call: TillCall,
    signatures: TillSignatures,
    signature: Signature,
) -> Relayed:
    """`relay`, for a call that spends or reserves points: its signature is remembered with
    its key first (committed), and the same signature under another key is refused before
    anything reaches points. A database away raises (the API answers 503): nothing is sent."""
    assert call.idempotency_key is not None
    if gateway is None:
        raise not_configured()
    signed = SignedCall(
        call.partner_id, signature.digest, signature.signed_at, call.idempotency_key
    )
    if not await signatures.remember(signed):
        log.warning("a signed till call came again under another key, partner %s", call.partner_id)
        raise signature_replayed()
    return await relay(gateway, settings, call)


async def relay(gateway: PointsGateway | None, settings: IngestSettings, call: TillCall) -> Relayed:
    """Points' answer to `call`, or the TillFailure that says what the till may do next.
    Logged by kind and partner only: the path may hold a coupon code."""
    if gateway is None:
        raise not_configured()
    retry_after = settings.points_retry_after_seconds
    try:
        answer = await gateway.call(call)
    except PointsUnreachable as error:
        # str(): the failure's kind (an error class name, set by the gateway), kept as text so
        # that the log redaction of exception arguments does not hide it.
        log.warning(
            "points unreachable on a till call (%s), partner %s", str(error), call.partner_id
        )
        raise unreachable(retry_after) from None
    except PointsOutcomeUnknown as error:
        log.warning(
            "no answer from points to a till call (%s), partner %s", str(error), call.partner_id
        )
        raise outcome_unknown(call.changes_state, retry_after) from None
    try:
        return relayed(answer, retry_after=retry_after)
    except TillFailure as failure:
        log.warning(
            "points answered a till call with HTTP %s (%s), partner %s",
            answer.status,
            failure.slug,
            call.partner_id,
        )
        raise
