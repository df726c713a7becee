"""A reward's coupon in `redemption_confirmed`. Pure: no I/O, time passed in.

The code never travels in an event (whoever holds it can use it): `coupon.issued` carries the
coupon's id, the message stores that id, and the dispatcher reads the code from points when
it sends the message, on the channels a person reads (email: the code as text and as a QR
image; SMS: the code as text). A partner's webhook gets the coupon's id, never its code.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import segno

from services.notifications.domain.model import (
    PERSONAL_CHANNELS,
    Delivery,
    DeliveryPolicy,
    retry_delay,
)

REDEMPTION_CONFIRMED = "redemption_confirmed"
COUPON_ID = "coupon_id"
VOIDED = "voided"  # a coupon's status in points once its gift's grant was revoked

# The most characters of a code the messages carry: points' codes are far shorter.
MAX_CODE_LENGTH = 64

# What the template preview shows in place of a real code.
SAMPLE_CODE = "FDL7-K2QM-9XWA-3HTR"


def coupon_params(
    *,
    coupon_id: str,
    reward_id: str,
    reward: str,
    points: int,
    expires_at: datetime,
    zone: ZoneInfo,
    gift: bool = False,
) -> dict[str, Any]:
    """What a coupon's `redemption_confirmed` stores: the reward, the points it cost, the
    coupon's id and its expiry (the instant, and the customer's local day it falls on);
    never the code. A gift (engagement gave it, no points spent) says so: its message thanks
    the member rather than confirming a redemption."""
    params: dict[str, Any] = {
        "points": points,
        "reward": reward,
        "reward_id": reward_id,
        COUPON_ID: coupon_id,
        "expires_at": expires_at.astimezone(UTC).isoformat(),
        "expires_on": expires_at.astimezone(zone).date().isoformat(),
    }
    if gift:
        params["gift"] = True
    return params


def coupon_of(delivery: Delivery) -> str | None:
    """The coupon whose code this message must carry when it goes out, or None: a coupon's
    `redemption_confirmed` on a channel a person reads (a free-form redemption has none)."""
    if delivery.template != REDEMPTION_CONFIRMED or delivery.channel not in PERSONAL_CHANNELS:
        return None
    coupon_id = delivery.params.get(COUPON_ID)
    return coupon_id if isinstance(coupon_id, str) and coupon_id else None


@dataclass(frozen=True)
class Coupon:
    """A coupon as points tells it. The code is never in a repr, a log line or an error."""

    coupon_id: str
    customer_id: str
    code: str = field(repr=False)
    status: str
    expires_at: datetime


class CouponLookupError(Exception):
    """Why a coupon's code could not be had, by kind only (an HTTP status, an exception
    class): `permanent` when no retry would change it."""

    permanent = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CouponUnavailable(CouponLookupError):
    """Points could not be asked (unreachable, a timeout, a 5xx, not configured) or gave an
    answer that is no coupon: the message waits and is tried again, never sent without its
    code."""


class UnknownCoupon(CouponLookupError):
    """Points does not know the coupon (404), or it is another customer's: the message fails."""

    permanent = True


class VoidedCoupon(CouponLookupError):
    """Points voided the coupon (a gift whose engagement grant was revoked before it went out):
    its code is of no use, and the message fails."""

    permanent = True


def check_coupon(coupon: Coupon, delivery: Delivery) -> Coupon:
    """The coupon, if it is the message's own: the one it names, of its customer, and not
    voided."""
    if coupon.coupon_id != delivery.params.get(COUPON_ID):
        raise CouponUnavailable("points answered with another coupon")
    if coupon.customer_id != delivery.customer_id:
        raise UnknownCoupon("the coupon is another customer's")
    if coupon.status == VOIDED:
        raise VoidedCoupon("the coupon was voided")
    return coupon


def wait_for_coupon(
    delivery: Delivery, error: CouponLookupError, now: datetime, policy: DeliveryPolicy
) -> Delivery:
    """A message whose code points could not give now: an attempt that failed, retried with
    the delivery backoff (the `retry-deliveries` job releases it too), but never failed for
    good because points is away; it stays due until it goes out or its coupon expires (then
    it is stale: model.stale_reason)."""
    attempts = delivery.attempts + 1
    return replace(
        delivery,
        attempts=attempts,
        last_error=error.reason,
        next_attempt_at=now + retry_delay(attempts, policy),
    )


def qr_png(code: str) -> bytes:
    """The code as a QR symbol (ISO/IEC 18004, error correction at least M), as a PNG:
    4 pixels a module and the 4-module quiet zone the standard asks for."""
    symbol = segno.make(code, error="m", micro=False)
    out = io.BytesIO()
    symbol.save(out, kind="png", scale=4, border=4)
    return out.getvalue()


def qr_content_id(notification_id: str) -> str:
    """The Content-ID (without its angle brackets) of the QR image of a message: the HTML
    part shows it as `cid:<this>`."""
    return f"coupon-qr.{notification_id}@fedelta"
