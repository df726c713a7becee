"""The ports of the points service: what its handlers, use cases and jobs need of storage.

Each is a Protocol; `adapters/repositories/` implements them on PostgreSQL (its factories are
annotated with these, so mypy checks the classes), and the unit tests' fakes implement the
same ones (`tests/support/fakes/points.py`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.points.domain.coupons import Coupon
from services.points.domain.earning import Campaign
from services.points.domain.engagement import Revocation
from services.points.domain.holds import Hold
from services.points.domain.liability import Liability
from services.points.domain.lots import Allocation
from services.points.domain.model import LedgerEntry, Member, TierAssignment
from services.points.domain.offers import Membership, PersonalOffer, SegmentChange
from services.points.domain.refunds import PurchaseRecord, RefundRecord
from services.points.domain.rewards import Reward
from services.points.domain.tender import TenderLink


class ConsumerRepository(Protocol):
    """What `handlers.apply_batch` reads and writes: each method takes or returns the rows of
    a whole batch and costs one statement, whatever the batch's size."""

    async def add_customers(self, members: Sequence[Member]) -> set[str]:
        """Adds each customer unless already known; the customer ids that were new."""
        ...

    async def record(self, entries: Sequence[LedgerEntry]) -> set[str]:
        """Appends the entries, in order, unless an entry with the same id is in the ledger
        already (or earlier in `entries`); the entry ids that were new."""
        ...

    async def buyers_of(
        self, customer_ids: Collection[str]
    ) -> tuple[dict[str, TierAssignment], dict[str, str]]:
        """In one query, the tier of each of these customers that has one, and who referred
        each, where the referrer is a known customer and not the customer themselves."""
        ...

    async def set_tiers(self, assignments: Sequence[TierAssignment]) -> None:
        """Stores each customer's tier unless the stored one took effect later; at most one
        assignment per customer."""
        ...

    async def campaigns_during(self, earliest: datetime, latest: datetime) -> list[Campaign]:
        """Every campaign running at some instant in [earliest, latest], in one query."""
        ...

    async def earned_on(
        self, days: Collection[tuple[str, datetime, datetime]]
    ) -> dict[tuple[str, datetime], int]:
        """The purchase points (granted and held) each customer earned on each day, given
        as (customer, start, end), keyed by customer and start; only days with some
        points."""
        ...

    async def record_purchases(self, records: Sequence[PurchaseRecord]) -> set[str]:
        """Keeps what refunds need of each purchase, unless kept already; the keys of those
        purchases that have refunds kept (which came before them), in the same statement."""
        ...

    async def purchases_of(self, keys: Collection[str]) -> dict[str, PurchaseRecord]: ...

    async def add_refunds(self, records: Sequence[RefundRecord]) -> None:
        """Keeps each refund, in the order given, unless kept already."""
        ...

    async def refunds_of(self, keys: Collection[str]) -> dict[str, list[RefundRecord]]:
        """The refunds kept of each of these purchases, in the order they came."""
        ...

    async def debtors(self, customer_ids: Collection[str]) -> set[str]:
        """Those of these customers whose reversals took more than their lots covered."""
        ...

    async def lock_customers(self, customer_ids: Collection[str]) -> None:
        """Locks every customer's lots until the transaction ends (the API's spends wait)."""
        ...

    async def ledgers_of(
        self, customer_ids: Collection[str]
    ) -> tuple[dict[str, list[LedgerEntry]], list[Allocation]]:
        """These customers' entries (each in ledger order) and allocations."""
        ...

    async def record_allocations(self, drawn: Sequence[tuple[str, Allocation]]) -> None:
        """(customer id, allocation) pairs, in one statement."""
        ...

    async def claim_grants(self, grants: Sequence[tuple[str, str]]) -> set[str]:
        """Keeps each engagement grant, (grant id, customer id), unless that grant or its
        revocation is kept already; the grant ids that were new. A grant a concurrent
        transaction is keeping waits for it."""
        ...

    async def add_revocations(self, revocations: Sequence[Revocation]) -> None:
        """Marks each engagement grant revoked, kept or not yet seen (then kept as revoked,
        and `claim_grants` never claims it); a grant revoked already keeps its first
        revocation."""
        ...

    async def rewards_of(self, reward_ids: Collection[str]) -> dict[str, Reward]:
        """The catalogue's rewards among these ids, by id (gifts: `domain.engagement`)."""
        ...

    async def take_stock(self, counts: Mapping[str, int]) -> set[str]:
        """Counts each reward's gifts as issued, each only where its stock takes them all
        (none: unlimited); the reward ids whose stock could not, left as they were."""
        ...

    async def add_coupons(self, coupons: Sequence[Coupon]) -> None:
        """Keeps the gift coupons, in one statement."""
        ...

    async def gift_coupons(self, grant_ids: Collection[str]) -> list[Coupon]:
        """The gift coupons of these grants, locked until the transaction ends (a till taking
        one waits, or is waited for)."""
        ...

    async def save_revoked(self, coupons: Sequence[Coupon]) -> None:
        """Stores each gift coupon's status and revocation (`domain.coupons.revoke_gift`)."""
        ...

    async def targeting_of(
        self,
        members: Collection[str],
        offered: Collection[str],
        earliest: datetime,
        latest: datetime,
    ) -> tuple[dict[str, dict[str, Membership]], dict[str, list[PersonalOffer]]]:
        """In one query: every segment membership kept of `members` (in or out), by member
        and segment, and the personal offers of `offered` running at some instant in
        [earliest, latest], by member."""
        ...

    async def set_segments(self, changes: Sequence[SegmentChange]) -> None:
        """Keeps each change unless the one kept of its member and segment is as recent or
        newer; at most one change per member and segment."""
        ...

    async def add_offers(self, offers: Sequence[PersonalOffer], made_at: datetime) -> set[str]:
        """Keeps each offer unless kept already; the offer ids that were new."""
        ...

    async def erase_targeting(self, customer_ids: Collection[str]) -> None:
        """Deletes these members' segment memberships and offers."""
        ...

    async def link_redemptions(self, links: Sequence[TenderLink]) -> dict[str, str]:
        """Points as tender, in one statement: records on each purchase (kept already, at most
        one link each) the redemption it names, where that is a spend (a redemption, a hold)
        of the same customer, not a reward's, that no other purchase names (of two in
        `links`, the first); the purchase keys refused, each with why (`domain.tender`)."""
        ...


class ReportsRepository(Protocol):
    """What the finance reports sum up, each in one or two aggregate statements."""

    async def liability(self, as_of: datetime) -> list[Liability]: ...

    async def honoured(self, as_of: datetime) -> dict[str | None, int]:
        """The points spent at each honouring partner (None: the program) up to `as_of`,
        net of what was given back for those spends."""
        ...

    async def spent_between(
        self, start: datetime, end: datetime
    ) -> dict[tuple[str | None, str | None], int]:
        """The points spent in [start, end), net of what was given back in it, by (issuing
        partner, honouring partner) of the lots and the spends (None: the program)."""
        ...


@dataclass(frozen=True)
class HeldEarning:
    held_id: str
    customer_id: str
    points: int


@dataclass(frozen=True)
class HeldDecision:
    decision: str
    decided_at: datetime


@dataclass(frozen=True)
class Adjustment:
    adjustment_id: str
    customer_id: str
    points: int
    reason: str
    actor: str
    created_at: datetime


class LedgerRepository(Protocol):
    """What the HTTP use cases read and write of the ledger."""

    async def lock_customer(self, customer_id: str) -> None:
        """Serializes, until the transaction ends, everything that draws on this customer's
        lots: two spends can then never both see the same points left."""
        ...

    async def is_known(self, customer_id: str) -> bool: ...

    async def entries(self, customer_id: str) -> list[LedgerEntry]: ...

    async def allocations_of(self, customer_id: str) -> list[Allocation]: ...

    async def open_lots(
        self, customer_id: str, now: datetime
    ) -> tuple[list[LedgerEntry], list[Allocation]]:
        """The customer's lots unexpired at `now` with points left, and for each one an
        allocation standing for everything drawn from it so far."""
        ...

    async def lifetime_and_debt(self, customer_id: str) -> tuple[int, int]: ...

    async def allocations_by(self, entry_ids: Collection[str]) -> list[Allocation]: ...

    async def record(self, entries: Sequence[LedgerEntry]) -> set[str]: ...

    async def record_allocations(self, drawn: Sequence[tuple[str, Allocation]]) -> None: ...

    async def page(
        self, customer_id: str, *, limit: int, before_seq: int | None
    ) -> list[tuple[int, LedgerEntry]]:
        """Newest first; `before_seq` is the cursor of the previous page."""
        ...

    async def lots_drawn_by(self, entry_ids: Collection[str]) -> dict[str, list[Allocation]]: ...

    async def actors_of(self, entry_ids: Collection[str]) -> dict[str, str]:
        """Who made each of these entries that a person made (a staff adjustment)."""

    async def held_earning(self, held_id: str) -> HeldEarning | None:
        """The earning the velocity guard held under this id, if any."""
        ...

    async def decide_held(
        self, held: HeldEarning, decision: str, decided_at: datetime
    ) -> datetime | None:
        """Records the decision unless one was recorded before; its instant, or None when
        there was one already (`held_decision` tells which)."""
        ...

    async def held_decision(self, held_id: str) -> HeldDecision: ...

    async def add_adjustment(self, adjustment: Adjustment) -> None: ...


class CampaignRepository(Protocol):
    async def add(self, campaign: Campaign, created_at: datetime) -> None: ...

    async def get(self, campaign_id: str, *, for_update: bool = False) -> Campaign | None: ...

    async def list_all(self) -> list[Campaign]:
        """Every campaign, the soonest-starting first."""
        ...

    async def replace(self, campaign: Campaign) -> None: ...

    async def offers_of(self, customer_id: str, at: datetime) -> list[PersonalOffer]:
        """The member's personal offers running at `at`, the soonest-starting first."""
        ...

    async def delete(self, campaign_id: str) -> bool:
        """True when there was such a campaign."""
        ...


class HoldRepository(Protocol):
    """Holds as the HTTP use cases place and settle them."""

    async def add(self, hold: Hold) -> None: ...

    async def get_for_update(self, hold_id: str) -> Hold | None:
        """The hold, locked until the transaction ends."""
        ...

    async def save_settled(self, settled: Sequence[Hold]) -> None: ...


# Where a chunk of lots ends, in the order the jobs take lots in: (expires_at, entry_id).
LotKey = tuple[datetime, str]


@dataclass(frozen=True)
class DrawnLot:
    """A lot and the points allocated against it so far (negative allocations, points given
    back, included)."""

    lot: LedgerEntry
    drawn: int


class JobsRepository(Protocol):
    """What the time-driven jobs read and write: the lots expiring, their warnings, and the
    holds that timed out."""

    async def record(self, entries: Sequence[LedgerEntry]) -> set[str]: ...

    async def record_allocations(self, drawn: Sequence[tuple[str, Allocation]]) -> None: ...

    async def allocations_by(self, entry_ids: Collection[str]) -> list[Allocation]: ...

    async def lock_customers(self, customer_ids: Collection[str]) -> None: ...

    async def lots_expiring(
        self,
        *,
        after: datetime,
        until: datetime,
        after_lot: LotKey,
        limit: int,
        unwarned: bool,
    ) -> list[DrawnLot]:
        """In one statement, the next `limit` lots in (expiry, id) order after `after_lot`
        that expire in (after, until] and still hold points, each with what was drawn from it;
        with `unwarned`, only those not warned of yet."""
        ...

    async def draws_on(
        self, lot_ids: Collection[str]
    ) -> tuple[list[Allocation], list[LedgerEntry]]:
        """Every allocation against these lots, and the expiries among the movements that
        made them, in one statement each."""
        ...

    async def record_warnings(self, lot_ids: Sequence[str], warned_at: datetime) -> set[str]:
        """Marks the lots warned; the ids that were not marked before."""
        ...

    async def timed_out_holds(self, as_of: datetime, limit: int) -> list[Hold]:
        """Holds still held at their timeout by `as_of`, locked; those another transaction
        is settling are passed over."""
        ...

    async def save_settled(self, settled: Sequence[Hold]) -> None: ...


@dataclass(frozen=True)
class IssuedCoupon:
    """A coupon with what its reward says of it: its name and the partner honouring it."""

    coupon: Coupon
    reward: str
    honoured_by: str | None


class CatalogueRepository(Protocol):
    """The reward catalogue and its coupons, as the HTTP use cases read and write them; every
    list is one statement, whatever its length."""

    async def add_reward(self, reward: Reward) -> None: ...

    async def reward(self, reward_id: str, *, for_update: bool = False) -> Reward | None: ...

    async def rewards(
        self, *, now: datetime, include_ended: bool, partner_id: str | None = None
    ) -> list[Reward]:
        """Not retired nor ended at `now` (every one with `include_ended`), oldest first;
        with `partner_id`, those any partner or that one honours."""
        ...

    async def replace_reward(self, reward: Reward) -> None: ...

    async def take_one(self, reward_id: str) -> bool:
        """Counts one more issued, unless that would exceed the stock: False then."""
        ...

    async def tier_of(self, customer_id: str) -> str | None: ...

    async def coupons_held(self, customer_id: str, reward_ids: Collection[str]) -> dict[str, int]:
        """How many coupons of each of these rewards the customer was ever issued by a
        redemption (gift coupons, engagement's, count against no per-member limit)."""
        ...

    async def add_coupon(self, coupon: Coupon) -> None: ...

    async def coupon_by_code(self, code: str) -> IssuedCoupon | None:
        """The coupon of this (normalised) code, locked until the transaction ends."""
        ...

    async def coupon(self, coupon_id: str) -> IssuedCoupon | None: ...

    async def coupons_of(self, customer_id: str, limit: int) -> list[IssuedCoupon]:
        """The customer's coupons, newest first."""
        ...

    async def save_taken(self, coupon: Coupon) -> None: ...

    async def attribute_redemption(
        self, redemption_id: str, partner_id: str, store_id: str | None
    ) -> None:
        """Names the partner (and store) that honoured a redemption that named none."""
        ...


class CouponJobsRepository(Protocol):
    """What the coupon-expiry job reads and writes, a chunk of coupons at a time."""

    async def coupons_expired(self, as_of: datetime, limit: int) -> list[Coupon]:
        """Coupons still issued at their expiry by `as_of`, locked; those another
        transaction holds (a till taking one) are passed over."""
        ...

    async def lock_customers(self, customer_ids: Collection[str]) -> None: ...

    async def allocations_by(self, entry_ids: Collection[str]) -> list[Allocation]: ...

    async def entries_by_id(self, entry_ids: Collection[str]) -> dict[str, LedgerEntry]: ...

    async def record(self, entries: Sequence[LedgerEntry]) -> set[str]: ...

    async def record_allocations(self, drawn: Sequence[tuple[str, Allocation]]) -> None: ...

    async def save_expired(self, coupons: Sequence[Coupon]) -> None: ...
