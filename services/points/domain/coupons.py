"""Coupons: the single-use codes a reward's redemptions issue, taken at a till, and given back
(or forfeited) when they expire unused. Pure Python: no framework, no I/O, time passed in.

A gift coupon is one an engagement grant gave (`domain.engagement`): no points spent (0), so
nothing to give back when it expires; its grant revoked, it is voided while unused, and a used
one stays used (nothing can be taken back: the revocation is only recorded on it).

A code is 16 characters of Crockford's base32 (80 random bits from `secrets`), shown as
XXXX-XXXX-XXXX-XXXX and accepted in any case, with or without dashes or spaces, and with
the look-alikes O for 0 and I or L for 1."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from services.points.domain.lots import Allocation
from services.points.domain.model import EntryKind, LedgerEntry

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 16  # 16 x 5 bits = 80 bits
GROUP = 4
_LOOK_ALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = str.maketrans({"-": "", " ": ""})
MAX_CODE_INPUT = 64


class CouponStatus(StrEnum):
    ISSUED = "issued"
    REDEEMED = "redeemed"
    EXPIRED = "expired"
    VOIDED = "voided"  # a gift coupon whose grant was revoked before it was used


@dataclass(frozen=True)
class Coupon:
    coupon_id: str
    code: str  # normalised
    customer_id: str
    reward_id: str
    redemption_id: str
    points: int
    issued_at: datetime
    expires_at: datetime
    status: CouponStatus = CouponStatus.ISSUED
    redeemed_at: datetime | None = None
    partner_id: str | None = None  # whose till took it
    store_id: str | None = None
    purchase_id: str | None = None
    expired_at: datetime | None = None
    points_returned: int | None = None
    grant_id: str | None = None  # a gift: the engagement grant that gave it
    revoked_at: datetime | None = None  # a gift whose grant was revoked (voided, or too late)

    @property
    def is_gift(self) -> bool:
        return self.grant_id is not None


def new_code(choose: Callable[[str], str] = secrets.choice) -> str:
    """A fresh code, normalised (no dashes)."""
    return "".join(choose(ALPHABET) for _ in range(CODE_LENGTH))


def shown(code: str) -> str:
    """The code as printed for the member: XXXX-XXXX-XXXX-XXXX."""
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def normalised(text: str) -> str | None:
    """The code a member or a till typed, as stored; None when it cannot be one."""
    if len(text) > MAX_CODE_INPUT:
        return None
    code = text.translate(_SEPARATORS).upper().translate(_LOOK_ALIKES)
    if len(code) != CODE_LENGTH or any(c not in ALPHABET for c in code):
        return None
    return code


def status_at(coupon: Coupon, now: datetime) -> CouponStatus:
    """An issued coupon past its expiry is expired, whether or not the job recorded it."""
    if coupon.status is CouponStatus.ISSUED and now >= coupon.expires_at:
        return CouponStatus.EXPIRED
    return coupon.status


class CouponRefused(Exception):
    """A coupon a till may not take now."""


class AnotherPartnersReward(CouponRefused):
    pass


class CouponUsed(CouponRefused):
    def __init__(self, coupon: Coupon) -> None:
        super().__init__(f"coupon {coupon.coupon_id} was used at {coupon.redeemed_at}")
        self.coupon = coupon


class CouponExpired(CouponRefused):
    def __init__(self, coupon: Coupon) -> None:
        super().__init__(f"coupon {coupon.coupon_id} expired at {coupon.expires_at}")
        self.coupon = coupon


class CouponVoided(CouponRefused):
    def __init__(self, coupon: Coupon) -> None:
        super().__init__(f"coupon {coupon.coupon_id} was voided at {coupon.revoked_at}")
        self.coupon = coupon


def take(
    coupon: Coupon,
    *,
    honoured_by: str | None,
    partner_id: str | None,
    store_id: str | None,
    purchase_id: str | None,
    now: datetime,
) -> Coupon:
    """The coupon used at the till of `partner_id` (None: an administrator) at `now`. A
    reward honoured by one partner is refused at another's till before anything is said of
    its state; then a used one, a voided one, then an expired one."""
    if partner_id is not None and honoured_by is not None and honoured_by != partner_id:
        raise AnotherPartnersReward(f"the reward is honoured by partner {honoured_by!r}")
    if coupon.status is CouponStatus.REDEEMED:
        raise CouponUsed(coupon)
    if coupon.status is CouponStatus.VOIDED:
        raise CouponVoided(coupon)
    if status_at(coupon, now) is CouponStatus.EXPIRED:
        raise CouponExpired(coupon)
    return replace(
        coupon,
        status=CouponStatus.REDEEMED,
        redeemed_at=now,
        partner_id=partner_id,
        store_id=store_id,
        purchase_id=purchase_id,
    )


def refund_entry_id(coupon: Coupon) -> str:
    return f"{coupon.redemption_id}:coupon-expired"


def give_back(
    coupon: Coupon,
    redemption: LedgerEntry | None,
    drawn: Iterable[Allocation],
    lot_expiries: Mapping[str, datetime | None],
    now: datetime,
) -> tuple[LedgerEntry, list[Allocation]] | None:
    """An expired coupon's points back to the lots its redemption drew them from, as a
    release: only to lots known (in `lot_expiries`) and not expired at `now` (expired points
    are never resurrected); None when nothing goes back."""
    entry_id = refund_entry_id(coupon)
    given = [
        Allocation(entry_id, a.lot_id, -a.points)
        for a in drawn
        if a.entry_id == coupon.redemption_id
        and a.points > 0
        and a.lot_id in lot_expiries
        and _unexpired(lot_expiries[a.lot_id], now)
    ]
    if not given:
        return None
    entry = LedgerEntry(
        entry_id=entry_id,
        customer_id=coupon.customer_id,
        kind=EntryKind.RELEASE,
        points=-sum(a.points for a in given),
        reason="coupon expired",
        occurred_at=now,
        available_at=now,
        partner_id=None if redemption is None else redemption.partner_id,
        store_id=None if redemption is None else redemption.store_id,
        reward_id=coupon.reward_id,
    )
    return entry, given


def _unexpired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is None or expires_at > now


def expire_all(
    coupons: Sequence[Coupon],
    redemptions: Mapping[str, LedgerEntry],
    drawn: Sequence[Allocation],
    lot_expiries: Mapping[str, datetime | None],
    now: datetime,
    *,
    refund: bool,
) -> list[tuple[Coupon, tuple[LedgerEntry, list[Allocation]] | None]]:
    """Each issued coupon expired by `now`, marked expired, with the release that gives its
    points back (`refund`, and only what can go back) or None. A gift gives nothing back: no
    points were spent on it."""
    expired = []
    for coupon in coupons:
        if status_at(coupon, now) is not CouponStatus.EXPIRED:
            continue
        if coupon.status is not CouponStatus.ISSUED:
            continue
        back = (
            give_back(coupon, redemptions.get(coupon.redemption_id), drawn, lot_expiries, now)
            if refund and not coupon.is_gift
            else None
        )
        returned = 0 if back is None else back[0].points
        marked = replace(
            coupon,
            status=CouponStatus.EXPIRED,
            expired_at=coupon.expires_at,
            points_returned=returned,
        )
        expired.append((marked, back))
    return expired


def revoke_gift(coupon: Coupon, revoked_at: datetime, now: datetime) -> Coupon | None:
    """A gift coupon once its grant is revoked (at `revoked_at`, applied at `now`): voided
    while still usable at `now`; a used or expired one keeps its state (nothing can be taken
    back) and only records the revocation. None when it recorded one already, or is no gift."""
    if not coupon.is_gift or coupon.revoked_at is not None:
        return None
    if status_at(coupon, now) is CouponStatus.ISSUED:
        return replace(coupon, status=CouponStatus.VOIDED, revoked_at=revoked_at)
    return replace(coupon, revoked_at=revoked_at)
