"""Targeting (issue 21): the segments a member is in, as insights announces them, and the
personal offers points makes a member, each a campaign of theirs alone.

Segment changes may come late or twice: per member and segment the change with the latest
`changed_at` holds, and an older one changes nothing (nor makes an offer). Pure Python: no
framework, no I/O, time passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from services.points.domain.earning import Campaign
from services.points.domain.model import WinBackOffer

# Entering it makes the program's win-back offer (product.md §9: lapsed at 90 days by default).
WIN_BACK_SEGMENT = "lifecycle:lapsed"
WIN_BACK = "win_back"


@dataclass(frozen=True)
class Membership:
    """Whether a member is in a segment, as of the latest change points has seen."""

    member: bool
    changed_at: datetime


@dataclass(frozen=True)
class SegmentChange:
    customer_id: str
    segment: str
    member: bool  # True: entered; False: left
    changed_at: datetime

    @property
    def membership(self) -> Membership:
        return Membership(self.member, self.changed_at)


def supersedes(change: SegmentChange, current: Membership | None) -> bool:
    """True when the change is newer than what is known: an equally recent one is the same
    evaluation seen again and changes nothing."""
    return current is None or change.changed_at > current.changed_at


def segments_in(memberships: dict[str, Membership]) -> frozenset[str]:
    return frozenset(segment for segment, known in memberships.items() if known.member)


class _OfferTerms(Campaign):
    """A personal offer as the earning formula takes it: a campaign whose rule is
    `offer:<id>` (the handler gives the formula only the buyer's own offers)."""

    @property
    def rule_id(self) -> str:
        return f"offer:{self.campaign_id}"


@dataclass(frozen=True)
class PersonalOffer:
    """An offer made to one member, applied to their purchases made in [starts_at, ends_at)."""

    offer_id: str
    customer_id: str
    reason: str
    name: str
    starts_at: datetime
    ends_at: datetime
    multiplier: Decimal | None = None
    bonus: int | None = None

    @property
    def rule_id(self) -> str:
        return f"offer:{self.offer_id}"

    def terms(self) -> Campaign:
        return _OfferTerms(
            campaign_id=self.offer_id,
            name=self.name,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            multiplier=self.multiplier,
            bonus=self.bonus,
        )

    def live_at(self, instant: datetime) -> bool:
        return self.starts_at <= instant < self.ends_at


def win_back_offer(
    config: WinBackOffer | None,
    change: SegmentChange,
    *,
    offer_id: str,
    offers: list[PersonalOffer],
) -> PersonalOffer | None:
    """The offer a member entering `lifecycle:lapsed` is made, valid for the configured days
    from the change (`offers`: the member's known offers), or None: no offer configured, not
    an entry into lapsed, or a win-back offer of theirs still live then (they do not add up)."""
    if config is None or not change.member or change.segment != WIN_BACK_SEGMENT:
        return None
    if any(o.reason == WIN_BACK and o.live_at(change.changed_at) for o in offers):
        return None
    return PersonalOffer(
        offer_id=offer_id,
        customer_id=change.customer_id,
        reason=WIN_BACK,
        name=config.name,
        starts_at=change.changed_at,
        ends_at=change.changed_at + timedelta(days=config.days),
        multiplier=config.multiplier,
        bonus=config.bonus,
    )
