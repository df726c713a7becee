"""In-memory stand-ins for the points database, typed against the service's ports so that
mypy checks they keep up with them."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from services.points import ports
from services.points.domain.coupons import Coupon, CouponStatus
from services.points.domain.earning import Campaign
from services.points.domain.engagement import Revocation
from services.points.domain.lots import Allocation, balance_of
from services.points.domain.model import Balance, EntryKind, LedgerEntry, Member, TierAssignment
from services.points.domain.offers import Membership, PersonalOffer, SegmentChange
from services.points.domain.refunds import PurchaseRecord, RefundRecord, debts
from services.points.domain.rewards import Reward
from services.points.domain.tender import (
    ANOTHER_CUSTOMERS,
    REDEMPTION_USED,
    REWARD_REDEMPTION,
    UNKNOWN_REDEMPTION,
    TenderLink,
)
from tests.support.points import NOW


class FakeLedger(ports.ConsumerRepository):
    """The set-based repository in memory; `calls` names each method called, in order, so a
    test can tell a batch costs one call per step, not one per event."""

    def __init__(self) -> None:
        self.customers: dict[str, Member] = {}
        self.ledger: dict[str, LedgerEntry] = {}
        self.tiers: dict[str, TierAssignment] = {}
        self.campaigns: list[Campaign] = []
        self.purchases: dict[str, PurchaseRecord] = {}
        self.refunds: list[RefundRecord] = []
        self.allocations: list[tuple[str, Allocation]] = []
        self.grants: dict[str, Revocation | None] = {}  # grant id -> its revocation
        self.rewards: dict[str, Reward] = {}  # the catalogue, for gifts
        self.coupons: dict[str, Coupon] = {}  # gift coupons, by coupon id
        # Targeting: memberships by (member, segment); personal offers by offer id.
        self.segments: dict[tuple[str, str], Membership] = {}
        self.offers: dict[str, PersonalOffer] = {}
        self.calls: list[str] = []

    async def add_customers(self, members: Sequence[Member]) -> set[str]:
        self.calls.append("add_customers")
        new: set[str] = set()
        for member in members:
            if member.customer_id not in self.customers:
                self.customers[member.customer_id] = member
                new.add(member.customer_id)
        return new

    async def record(self, entries: Sequence[LedgerEntry]) -> set[str]:
        self.calls.append("record")
        new: set[str] = set()
        for entry in entries:
            if entry.entry_id not in self.ledger:
                self.ledger[entry.entry_id] = entry
                new.add(entry.entry_id)
        return new

    async def buyers_of(
        self, customer_ids: Collection[str]
    ) -> tuple[dict[str, TierAssignment], dict[str, str]]:
        self.calls.append("buyers_of")
        tiers = {c: self.tiers[c] for c in customer_ids if c in self.tiers}
        referrers = {
            c: referrer
            for c in customer_ids
            if c in self.customers
            and (referrer := self.customers[c].referred_by) is not None
            and referrer != c
            and referrer in self.customers
        }
        return tiers, referrers

    async def set_tiers(self, assignments: Sequence[TierAssignment]) -> None:
        self.calls.append("set_tiers")
        customers = [a.customer_id for a in assignments]
        assert len(customers) == len(set(customers)), "at most one assignment per customer"
        for assignment in assignments:
            current = self.tiers.get(assignment.customer_id)
            if current is None or current.effective_at <= assignment.effective_at:
                self.tiers[assignment.customer_id] = assignment

    async def campaigns_during(self, earliest: datetime, latest: datetime) -> list[Campaign]:
        self.calls.append("campaigns_during")
        return [c for c in self.campaigns if c.starts_at <= latest and c.ends_at > earliest]

    async def earned_on(
        self, days: Collection[tuple[str, datetime, datetime]]
    ) -> dict[tuple[str, datetime], int]:
        self.calls.append("earned_on")
        earned: dict[tuple[str, datetime], int] = {}
        for entry in self.ledger.values():
            counted = entry.kind in (EntryKind.EARN, EntryKind.HELD)
            if not counted or entry.entry_id.startswith("released:"):
                continue
            for customer_id, start, end in days:
                if customer_id == entry.customer_id and start <= entry.occurred_at < end:
                    earned[customer_id, start] = earned.get((customer_id, start), 0) + entry.points
        return earned

    async def record_purchases(self, records: Sequence[PurchaseRecord]) -> set[str]:
        self.calls.append("record_purchases")
        keys = {record.purchase_key for record in records}
        for record in records:
            # The redemption is linked by `link_redemptions` only, as in the database.
            self.purchases.setdefault(record.purchase_key, replace(record, redemption_id=None))
        return {r.purchase_key for r in self.refunds if r.purchase_key in keys}

    async def purchases_of(self, keys: Collection[str]) -> dict[str, PurchaseRecord]:
        self.calls.append("purchases_of")
        return {k: self.purchases[k] for k in keys if k in self.purchases}

    async def add_refunds(self, records: Sequence[RefundRecord]) -> None:
        self.calls.append("add_refunds")
        for record in records:
            if all(r.refund_key != record.refund_key for r in self.refunds):
                self.refunds.append(record)

    async def refunds_of(self, keys: Collection[str]) -> dict[str, list[RefundRecord]]:
        self.calls.append("refunds_of")
        found: dict[str, list[RefundRecord]] = {}
        for refund in self.refunds:
            if refund.purchase_key in keys:
                found.setdefault(refund.purchase_key, []).append(refund)
        return found

    async def link_redemptions(self, links: Sequence[TenderLink]) -> dict[str, str]:
        """As the SQL judges them (adapters/repositories/consumer.py): in one call."""
        self.calls.append("link_redemptions")
        refused: dict[str, str] = {}
        for link in links:
            spend = self.ledger.get(link.redemption_id)
            named = {
                p.redemption_id
                for p in self.purchases.values()
                if p.purchase_key != link.purchase_key
            }
            if spend is None or spend.kind not in (EntryKind.REDEEM, EntryKind.HOLD):
                refused[link.purchase_key] = UNKNOWN_REDEMPTION
            elif spend.customer_id != link.customer_id:
                refused[link.purchase_key] = ANOTHER_CUSTOMERS
            elif spend.reward_id is not None:
                refused[link.purchase_key] = REWARD_REDEMPTION
            elif link.redemption_id in named:
                refused[link.purchase_key] = REDEMPTION_USED
            elif self.purchases[link.purchase_key].redemption_id is None:
                self.purchases[link.purchase_key] = replace(
                    self.purchases[link.purchase_key], redemption_id=link.redemption_id
                )
        return refused

    async def claim_grants(self, grants: Sequence[tuple[str, str]]) -> set[str]:
        self.calls.append("claim_grants")
        new: set[str] = set()
        for grant_id, _ in grants:
            if grant_id not in self.grants:
                self.grants[grant_id] = None
                new.add(grant_id)
        return new

    async def add_revocations(self, revocations: Sequence[Revocation]) -> None:
        self.calls.append("add_revocations")
        for revocation in revocations:
            if self.grants.get(revocation.grant_id) is None:
                self.grants[revocation.grant_id] = revocation

    async def rewards_of(self, reward_ids: Collection[str]) -> dict[str, Reward]:
        self.calls.append("rewards_of")
        return {r: self.rewards[r] for r in reward_ids if r in self.rewards}

    async def take_stock(self, counts: Mapping[str, int]) -> set[str]:
        self.calls.append("take_stock")
        refused: set[str] = set()
        for reward_id, n in counts.items():
            reward = self.rewards.get(reward_id)
            if reward is None or (reward.stock is not None and reward.redeemed + n > reward.stock):
                refused.add(reward_id)
            else:
                self.rewards[reward_id] = replace(reward, redeemed=reward.redeemed + n)
        return refused

    async def add_coupons(self, coupons: Sequence[Coupon]) -> None:
        self.calls.append("add_coupons")
        for coupon in coupons:
            assert coupon.coupon_id not in self.coupons, "a grant gives one coupon"
            self.coupons[coupon.coupon_id] = coupon

    async def gift_coupons(self, grant_ids: Collection[str]) -> list[Coupon]:
        self.calls.append("gift_coupons")
        return sorted(
            (c for c in self.coupons.values() if c.grant_id in grant_ids),
            key=lambda c: c.coupon_id,
        )

    async def save_revoked(self, coupons: Sequence[Coupon]) -> None:
        self.calls.append("save_revoked")
        for coupon in coupons:
            if self.coupons[coupon.coupon_id].revoked_at is None:
                self.coupons[coupon.coupon_id] = coupon

    async def targeting_of(
        self,
        members: Collection[str],
        offered: Collection[str],
        earliest: datetime,
        latest: datetime,
    ) -> tuple[dict[str, dict[str, Membership]], dict[str, list[PersonalOffer]]]:
        self.calls.append("targeting_of")
        segments: dict[str, dict[str, Membership]] = {}
        for (customer_id, segment), membership in self.segments.items():
            if customer_id in members:
                segments.setdefault(customer_id, {})[segment] = membership
        offers: dict[str, list[PersonalOffer]] = {}
        for offer in self.offers.values():
            running = offer.ends_at > earliest and offer.starts_at <= latest
            if offer.customer_id in offered and running:
                offers.setdefault(offer.customer_id, []).append(offer)
        return segments, offers

    async def set_segments(self, changes: Sequence[SegmentChange]) -> None:
        self.calls.append("set_segments")
        keys = [(c.customer_id, c.segment) for c in changes]
        assert len(keys) == len(set(keys)), "at most one change per member and segment"
        for change in changes:
            current = self.segments.get((change.customer_id, change.segment))
            if current is None or current.changed_at < change.changed_at:
                self.segments[change.customer_id, change.segment] = change.membership

    async def add_offers(self, offers: Sequence[PersonalOffer], made_at: datetime) -> set[str]:
        self.calls.append("add_offers")
        new: set[str] = set()
        for offer in offers:
            if offer.offer_id not in self.offers:
                self.offers[offer.offer_id] = offer
                new.add(offer.offer_id)
        return new

    async def erase_targeting(self, customer_ids: Collection[str]) -> None:
        self.calls.append("erase_targeting")
        self.segments = {k: m for k, m in self.segments.items() if k[0] not in customer_ids}
        self.offers = {k: o for k, o in self.offers.items() if o.customer_id not in customer_ids}

    def in_segment(self, customer_id: str) -> set[str]:
        """The segments the member is in, as the read model keeps them."""
        return {s for (c, s), m in self.segments.items() if c == customer_id and m.member}

    def coupon_of(self, grant_id: str) -> Coupon:
        [coupon] = [c for c in self.coupons.values() if c.grant_id == grant_id]
        return coupon

    async def debtors(self, customer_ids: Collection[str]) -> set[str]:
        self.calls.append("debtors")
        return {c for c in customer_ids if debts(self.entries(c), [a for _, a in self.allocations])}

    async def lock_customers(self, customer_ids: Collection[str]) -> None:
        self.calls.append("lock_customers")

    async def ledgers_of(
        self, customer_ids: Collection[str]
    ) -> tuple[dict[str, list[LedgerEntry]], list[Allocation]]:
        self.calls.append("ledgers_of")
        return {c: self.entries(c) for c in customer_ids}, [
            a for c, a in self.allocations if c in customer_ids
        ]

    async def record_allocations(self, drawn: Sequence[tuple[str, Allocation]]) -> None:
        self.calls.append("record_allocations")
        self.allocations.extend(drawn)

    def entries(self, customer_id: str) -> list[LedgerEntry]:
        return [e for e in self.ledger.values() if e.customer_id == customer_id]

    def balance(self, customer_id: str) -> Balance:
        return balance_of(
            customer_id, self.entries(customer_id), NOW, [a for _, a in self.allocations]
        )


@dataclass
class Ledger:
    """An append-only ledger as the database keeps it: an entry id is recorded once."""

    entries: list[LedgerEntry] = field(default_factory=list)
    allocations: list[Allocation] = field(default_factory=list)
    held: list[LedgerEntry] = field(default_factory=list)

    def record(self, entry: LedgerEntry, allocations: list[Allocation] = []) -> None:  # noqa: B006
        if any(e.entry_id == entry.entry_id for e in self.entries):
            return
        self.entries.append(entry)
        self.allocations.extend(allocations)


class FakeCouponJobs(ports.CouponJobsRepository):
    """ports.CouponJobsRepository in memory: coupons, the ledger entries their refunds start
    from, the allocations, and what each chunk read and locked."""

    def __init__(self) -> None:
        self.coupons: dict[str, Coupon] = {}
        self.entries: dict[str, LedgerEntry] = {}
        self.allocations: list[tuple[str, Allocation]] = []
        self.locked: list[set[str]] = []
        self.reads: list[int] = []

    async def coupons_expired(self, as_of: datetime, limit: int) -> list[Coupon]:
        found = sorted(
            (
                c
                for c in self.coupons.values()
                if c.status is CouponStatus.ISSUED and c.expires_at <= as_of
            ),
            key=lambda c: (c.expires_at, c.coupon_id),
        )[:limit]
        self.reads.append(len(found))
        return found

    async def lock_customers(self, customer_ids: Collection[str]) -> None:
        self.locked.append(set(customer_ids))

    async def allocations_by(self, entry_ids: Collection[str]) -> list[Allocation]:
        return [a for _, a in self.allocations if a.entry_id in entry_ids]

    async def entries_by_id(self, entry_ids: Collection[str]) -> dict[str, LedgerEntry]:
        return {i: self.entries[i] for i in entry_ids if i in self.entries}

    async def record(self, entries: Sequence[LedgerEntry]) -> set[str]:
        new = {e.entry_id for e in entries if e.entry_id not in self.entries}
        for entry in entries:
            self.entries.setdefault(entry.entry_id, entry)
        return new

    async def record_allocations(self, drawn: Sequence[tuple[str, Allocation]]) -> None:
        self.allocations.extend(drawn)

    async def save_expired(self, coupons: Sequence[Coupon]) -> None:
        for coupon in coupons:
            if self.coupons[coupon.coupon_id].status is CouponStatus.ISSUED:
                self.coupons[coupon.coupon_id] = coupon

    def left(self, lot_id: str) -> int:
        drawn = sum(a.points for _, a in self.allocations if a.lot_id == lot_id)
        return self.entries[lot_id].points - drawn
