"""In-memory stand-ins for the points database, typed against the service's ports so that
mypy checks they keep up with them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from services.points import ports
from services.points.domain.earning import Campaign
from services.points.domain.lots import Allocation, balance_of
from services.points.domain.model import Balance, EntryKind, LedgerEntry, Member, TierAssignment
from services.points.domain.refunds import PurchaseRecord, RefundRecord, debts
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
            self.purchases.setdefault(record.purchase_key, record)
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
