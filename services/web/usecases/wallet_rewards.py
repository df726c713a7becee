"""The member's rewards: the catalogue as it stands for them (affordable, redeemable, why not),
a redemption (points issues a coupon; the form's Idempotency-Key makes a second submit the same
redemption), their coupons, and one coupon with its code as text and as a QR code. A coupon is
shown only to the member it was issued to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import segno

from services.web.ports import Services
from services.web.usecases.wallet import Reading

# The reasons points gives for a reward the member may not redeem (domain/rewards.py).
WHY_NOT = ("tier", "stock", "limit", "window", "points")


@dataclass(frozen=True)
class RewardsPage:
    available: int | None
    rewards: list[dict[str, Any]]
    coupons: list[dict[str, Any]]
    unavailable: list[str]


@dataclass(frozen=True)
class Redeemed:
    """A redemption's outcome: the coupon issued, or why not (message key and the reasons)."""

    coupon_id: str | None
    refusal: str | None = None
    reasons: tuple[str, ...] = ()
    status: int = 201


@dataclass(frozen=True)
class CouponView:
    coupon: dict[str, Any]
    qr: str  # a data: URI of the code's QR code, as SVG


def new_form_key() -> str:
    return str(uuid.uuid4())


async def rewards_page(services: Services, actor: str, customer_id: str) -> RewardsPage:
    reading = Reading(services, actor)
    catalogue = await reading.body("points", f"/v1/customers/{customer_id}/rewards")
    coupons = await reading.body("points", f"/v1/customers/{customer_id}/coupons")
    rewards = list((catalogue or {}).get("rewards") or [])
    for reward in rewards:
        reward["why_not"] = [r for r in reward.get("why_not") or [] if r in WHY_NOT]
        # Each form its own key: submitting it twice is one redemption, and a form of a page
        # left open never shares its key with another reward's.
        reward["form_key"] = new_form_key()
    return RewardsPage(
        available=(catalogue or {}).get("available"),
        rewards=rewards,
        coupons=list((coupons or {}).get("coupons") or []),
        unavailable=reading.unavailable,
    )


async def redeem_reward(
    services: Services, actor: str, customer_id: str, *, reward_id: str, key: str
) -> Redeemed:
    answer = await services.send(
        "POST",
        "points",
        f"/v1/customers/{customer_id}/redemptions",
        actor=actor,
        body={"reward_id": reward_id},
        idempotency_key=key,
    )
    body = answer.body if isinstance(answer.body, dict) else {}
    coupon_id = (body.get("coupon") or {}).get("coupon_id")
    if answer.ok and coupon_id:
        return Redeemed(coupon_id=str(coupon_id))
    if answer.ok:  # a redemption without its coupon: not what points promises
        return Redeemed(None, "wallet.redeem.failed", status=502)
    slug = str(body.get("type", "")).rpartition(":")[2]
    reasons = tuple(r for r in body.get("reasons") or [] if r in WHY_NOT)
    if slug == "not-enough-points":
        reasons = ("points",)
    if answer.status == 404:
        return Redeemed(None, "wallet.redeem.unknown", status=404)
    if answer.status == 409 and (reasons or slug == "reward-unavailable"):
        return Redeemed(None, "wallet.redeem.refused", reasons, status=409)
    # A key used for another form (a reload of a stale page), or anything else refused.
    return Redeemed(
        None, "wallet.redeem.failed", status=answer.status if answer.status < 500 else 409
    )


async def coupon_page(
    services: Services, actor: str, customer_id: str, coupon_id: str
) -> CouponView | None:
    """The coupon when it is the member's own; None for any other or an unknown one (the
    page says 404 either way: whether another member's coupon exists is not told)."""
    answer = await services.get("points", f"/v1/coupons/{coupon_id}", actor=actor)
    coupon = answer.body if answer.ok and isinstance(answer.body, dict) else None
    if coupon is None or coupon.get("customer_id") != customer_id:
        return None
    return CouponView(coupon=coupon, qr=qr_data_uri(str(coupon.get("code", ""))))


def qr_data_uri(code: str) -> str:
    """The code as a QR code (SVG, dark on white, a quiet zone), as a data: URI an <img> takes
    under the page's CSP (img-src data:)."""
    return str(segno.make(code, error="m").svg_data_uri(scale=6, border=4))
