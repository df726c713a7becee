"""Coupons: taken once at a till (or by an administrator), and read with their code by
notifications (to send it) and by staff."""

from datetime import datetime

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.points import ports
from services.points.adapters.repositories.catalogue import catalogue_repository
from services.points.api.schemas import (
    CouponOut,
    CouponRedeemedOut,
    CouponRedeemIn,
    CustomerCouponsOut,
)
from services.points.domain.coupons import (
    AnotherPartnersReward,
    Coupon,
    CouponExpired,
    CouponUsed,
    CouponVoided,
    normalised,
    shown,
    status_at,
    take,
)
from services.points.usecases.common import KEYS, SOURCE, outbox, unknown_customer
from shared.clock import Clock
from shared.messaging import events
from shared.messaging.outbox import emit
from shared.web.deps import Caller
from shared.web.idempotency import IdempotentCall, run_keyed
from shared.web.problems import Problem


async def redeem_coupon(
    engine: AsyncEngine,
    clock: Clock,
    call: IdempotentCall,
    caller: Caller,
    code: str,
    body: CouponRedeemIn,
) -> CouponRedeemedOut | JSONResponse:
    """Uses the coupon once (200; a retry under the same key replays it): 404 unknown, 403 a
    reward another partner honours, 409 used already (with when), 410 expired or voided (a
    gift whose grant engagement revoked). The till's
    partner and store become the redemption's honouring ones when it named none."""

    async def work(conn: AsyncConnection) -> CouponRedeemedOut:
        catalogue = catalogue_repository(conn)
        stored = normalised(code)
        found = None if stored is None else await catalogue.coupon_by_code(stored)
        if found is None:
            raise Problem(404, "Not found", "no such coupon", slug="unknown-coupon")
        now = clock.now()
        store_id = body.store_id or caller.store_id
        try:
            taken = take(
                found.coupon,
                honoured_by=found.honoured_by,
                partner_id=caller.partner_id,
                store_id=store_id,
                purchase_id=body.purchase_id,
                now=now,
            )
        except AnotherPartnersReward:
            raise _another_partners(found) from None
        except CouponUsed as used:
            raise _used(used.coupon) from None
        except CouponExpired as expired:
            raise _expired(expired.coupon) from None
        except CouponVoided as voided:
            raise _voided(voided.coupon) from None
        await catalogue.save_taken(taken)
        if caller.partner_id is not None and not taken.is_gift:  # a gift has no ledger entry
            await catalogue.attribute_redemption(taken.redemption_id, caller.partner_id, store_id)
        await _announce(conn, clock, taken, found.honoured_by)
        return _redeemed(taken, found.reward)

    return await run_keyed(engine, call, KEYS, status_code=200, clock=clock, work=work)


async def get_coupon(
    catalogue: ports.CatalogueRepository, coupon_id: str, now: datetime
) -> CouponOut:
    found = await catalogue.coupon(coupon_id)
    if found is None:
        raise Problem(404, "Not found", f"no coupon {coupon_id!r}", slug="unknown-coupon")
    return coupon_out(found, now)


async def customer_coupons(
    ledger: ports.LedgerRepository,
    catalogue: ports.CatalogueRepository,
    customer_id: str,
    now: datetime,
    limit: int,
) -> CustomerCouponsOut:
    """The customer's coupons, newest first (at most `limit`)."""
    if not await ledger.is_known(customer_id):
        raise unknown_customer(customer_id)
    found = await catalogue.coupons_of(customer_id, limit)
    return CustomerCouponsOut(customer_id=customer_id, coupons=[coupon_out(c, now) for c in found])


async def _announce(
    conn: AsyncConnection, clock: Clock, coupon: Coupon, honoured_by: str | None
) -> None:
    assert coupon.redeemed_at is not None
    await emit(
        outbox(conn, clock),
        events.CouponRedeemed(
            coupon_id=coupon.coupon_id,
            customer_id=coupon.customer_id,
            redemption_id=coupon.redemption_id,
            reward_id=coupon.reward_id,
            partner_id=coupon.partner_id or honoured_by,
            store_id=coupon.store_id,
            purchase_id=coupon.purchase_id,
            redeemed_at=coupon.redeemed_at,
        ),
        source=SOURCE,
        customer_id=coupon.customer_id,
        time=clock.now(),
        cause_id=coupon.coupon_id,
        purpose="coupon-redeemed",
    )


def _redeemed(coupon: Coupon, reward: str) -> CouponRedeemedOut:
    assert coupon.redeemed_at is not None
    return CouponRedeemedOut(
        coupon_id=coupon.coupon_id,
        customer_id=coupon.customer_id,
        reward_id=coupon.reward_id,
        reward=reward,
        status="redeemed",
        redeemed_at=coupon.redeemed_at,
        partner_id=coupon.partner_id,
        store_id=coupon.store_id,
        purchase_id=coupon.purchase_id,
    )


def coupon_out(found: ports.IssuedCoupon, now: datetime) -> CouponOut:
    coupon = found.coupon
    return CouponOut(
        coupon_id=coupon.coupon_id,
        code=shown(coupon.code),
        customer_id=coupon.customer_id,
        reward_id=coupon.reward_id,
        reward=found.reward,
        redemption_id=coupon.redemption_id,
        points=coupon.points,
        status=status_at(coupon, now).value,
        issued_at=coupon.issued_at,
        expires_at=coupon.expires_at,
        redeemed_at=coupon.redeemed_at,
        partner_id=coupon.partner_id,
        store_id=coupon.store_id,
        purchase_id=coupon.purchase_id,
        points_returned=coupon.points_returned,
        grant_id=coupon.grant_id,
        revoked_at=coupon.revoked_at,
    )


def _another_partners(found: ports.IssuedCoupon) -> Problem:
    return Problem(
        403,
        "Another partner's reward",
        "this coupon's reward is honoured by another partner",
        slug="another-partners-reward",
    )


def _used(coupon: Coupon) -> Problem:
    assert coupon.redeemed_at is not None
    return Problem(
        409,
        "Coupon used",
        f"this coupon was used at {coupon.redeemed_at.isoformat()}",
        slug="coupon-used",
        redeemed_at=coupon.redeemed_at.isoformat(),
    )


def _expired(coupon: Coupon) -> Problem:
    return Problem(
        410,
        "Coupon expired",
        f"this coupon expired at {coupon.expires_at.isoformat()}",
        slug="coupon-expired",
        expires_at=coupon.expires_at.isoformat(),
    )


def _voided(coupon: Coupon) -> Problem:
    assert coupon.revoked_at is not None
    return Problem(
        410,
        "Coupon voided",
        "this coupon was a reward taken back, and can no longer be used",
        slug="coupon-voided",
        voided_at=coupon.revoked_at.isoformat(),
    )
