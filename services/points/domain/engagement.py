"""Engagement's rewards (issue 20): a grant of points becomes a lot once, and a revoked grant
is taken back like a refund's reversal. Pure Python: no framework, no I/O, time passed in.

A grant (`fedelta.engagement.rewarded`) of `points` is a bonus lot of its own, keyed by the
grant's id (so the same grant carried by two events is credited once), available at once (a
reward, not a purchase's pending points) and valid for the program's usual months.

A grant of a catalogue's `reward_id` is a gift: the reward's single-use coupon, issued to the
member with no points spent (0), once per grant id, valid for the reward's usual days from the
grant. Engagement decided who earned it, so the reward's tier and per-member limit are not
asked; a reward unknown to the catalogue, retired or outside its window at the grant, or out of
stock is refused (`CouponGrantRefused`). Every kind of reward (coupon, item, discount) is
delivered as a coupon, as a redemption delivers it. A gift counts one off the reward's stock.

A revocation (`fedelta.engagement.reward_revoked`) takes the grant back once: its own lot
first (its expired points count as taken back, never deducted twice), then the member's other
lots, soonest-expiring first; under `unlimited` what none of that covers is debt, which later
earnings repay first; under `within_balance` it stops at what they cover. A revocation is
kept even when its grant was never seen: a grant arriving after it is not credited. A revoked
gift voids its coupon while unused (`domain.coupons.revoke_gift`); one used already stays used:
nothing can be taken back and no debt is made.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.points.domain.coupons import Coupon
from services.points.domain.lots import Allocation, is_lot
from services.points.domain.model import EntryKind, LedgerEntry, Program, RefundPolicy
from services.points.domain.refunds import cover
from services.points.domain.rewards import Reward, coupon_expiry, is_open

GRANT_PREFIX = "engagement:"


class CouponGrantRefused(ValueError):
    """A grant of a catalogue's reward points cannot give: the reward is unknown, retired or
    outside its window, or out of stock. The consumer sets the event aside (dead-lettered with
    this class as its error)."""


@dataclass(frozen=True)
class Grant:
    grant_id: str
    customer_id: str
    reason: str  # stamp_card, challenge, surprise, birthday, feedback
    rule_id: str
    name: str
    points: int
    granted_at: datetime
    purchase_id: str | None = None


@dataclass(frozen=True)
class Gift:
    """A grant of a catalogue's reward: its coupon, given."""

    grant_id: str
    customer_id: str
    reason: str
    rule_id: str
    name: str
    reward_id: str
    granted_at: datetime
    purchase_id: str | None = None


@dataclass(frozen=True)
class Revocation:
    grant_id: str
    customer_id: str
    revoked_at: datetime
    refund_id: str | None = None

    @property
    def reversal_refund_id(self) -> str:
        """What its `points.reversed` names: the refund that caused it, else the grant."""
        return self.refund_id or self.grant_id


def grant_entry_id(grant_id: str) -> str:
    return f"{GRANT_PREFIX}{grant_id}"


def revocation_entry_id(grant_id: str) -> str:
    return f"engagement-revoked:{grant_id}"


def expired_credit_id(grant_id: str) -> str:
    """The allocation key under which a revocation records the grant's expired points it
    counted as taken back (no lot: those points are gone)."""
    return f"expired:{grant_entry_id(grant_id)}"


def grant_reason(reason: str, name: str) -> str:
    """`stamp card: Coffee card`: the engagement reason and the rule's name."""
    return f"{reason.replace('_', ' ')}: {name}"


def grant_rule_id(reason: str, rule_id: str) -> str:
    return f"{reason}:{rule_id}"


def grant_lot(program: Program, grant: Grant) -> LedgerEntry:
    """The lot a grant of points makes: available at once, valid for the program's months,
    issued by the program (no partner)."""
    return LedgerEntry(
        entry_id=grant_entry_id(grant.grant_id),
        customer_id=grant.customer_id,
        kind=EntryKind.BONUS,
        points=grant.points,
        reason=grant_reason(grant.reason, grant.name),
        occurred_at=grant.granted_at,
        available_at=grant.granted_at,
        expires_at=program.expiry_for(grant.granted_at),
        purchase_id=grant.purchase_id,
        rule_ids=(grant_rule_id(grant.reason, grant.rule_id),),
    )


def _expired_part(
    entries: Sequence[LedgerEntry],
    allocations: Sequence[Allocation],
    lot: LedgerEntry,
    now: datetime,
) -> int:
    """What of the grant's lot expired (recorded by the expiry job or not yet): its points
    less what other movements (spends, reversals, debts repaid) took from it."""
    if lot.expires_at is None or lot.expires_at > now:
        return 0
    expiries = {entry.entry_id for entry in entries if entry.kind is EntryKind.EXPIRE}
    taken = sum(
        a.points for a in allocations if a.lot_id == lot.entry_id and a.entry_id not in expiries
    )
    return max(lot.points - taken, 0)


def take_back_grant(
    entries: Sequence[LedgerEntry],
    allocations: Sequence[Allocation],
    *,
    grant: LedgerEntry,
    revocation: Revocation,
    policy: RefundPolicy,
    now: datetime,
) -> tuple[LedgerEntry, list[Allocation]]:
    """The reversal of a granted lot (`entries`: the member's ledger) and what it drew from:
    the grant's expired points as taken back, then its own lot, then the other lots."""
    entry_id = revocation_entry_id(revocation.grant_id)
    drawn: list[Allocation] = []
    credit = _expired_part(entries, allocations, grant, now) if is_lot(grant) else 0
    if credit > 0:
        drawn.append(Allocation(entry_id, expired_credit_id(revocation.grant_id), credit))
    drawn.extend(
        cover(
            entries,
            allocations,
            entry_id=entry_id,
            points=grant.points - credit,
            first_lots=frozenset({grant.entry_id}),
            now=now,
        )
    )
    taken = grant.points if policy == "unlimited" else sum(a.points for a in drawn)
    entry = LedgerEntry(
        entry_id=entry_id,
        customer_id=grant.customer_id,
        kind=EntryKind.REVERSE,
        points=-taken,
        reason=f"{grant.reason} (revoked)",
        occurred_at=revocation.revoked_at,
        available_at=revocation.revoked_at,
        purchase_id=grant.purchase_id,
    )
    return entry, drawn


_GIFT_COUPONS = uuid.UUID("6f1d3c9e-5b0a-4e57-9d2c-2f7a8e41b6c3")


def gift_coupon_id(grant_id: str) -> str:
    """The same coupon id for a grant every time (a grant gives one coupon)."""
    return str(uuid.uuid5(_GIFT_COUPONS, grant_id))


def gift_coupon(gift: Gift, reward: Reward | None, *, issued_before: int, code: str) -> Coupon:
    """The coupon a gift gives: 0 points, the grant's id as its redemption (no points moved),
    valid for the reward's days from the grant. `issued_before`: the reward's coupons issued
    before this one (the stock's count, with the batch's gifts ahead of it). Refused
    (`CouponGrantRefused`) for a reward unknown, not open at the grant, or out of stock."""
    if reward is None:
        raise CouponGrantRefused(
            f"engagement grant {gift.grant_id}: no reward {gift.reward_id!r} in the catalogue"
        )
    if not is_open(reward, gift.granted_at):
        raise CouponGrantRefused(
            f"engagement grant {gift.grant_id}: reward {reward.reward_id!r} is retired or "
            "outside its window"
        )
    if reward.stock is not None and issued_before >= reward.stock:
        raise CouponGrantRefused(
            f"engagement grant {gift.grant_id}: reward {reward.reward_id!r} is out of stock"
        )
    return Coupon(
        coupon_id=gift_coupon_id(gift.grant_id),
        code=code,
        customer_id=gift.customer_id,
        reward_id=reward.reward_id,
        redemption_id=gift.grant_id,
        points=0,
        issued_at=gift.granted_at,
        expires_at=coupon_expiry(reward, gift.granted_at),
        grant_id=gift.grant_id,
    )
