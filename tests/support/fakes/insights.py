"""In-memory stand-in for insights' repositories (`adapters/repositories/`), typed against the
ports: the facts as the SQL keeps them (each once by its key), read as of an instant the way
the SQL reads them."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypeVar

from services.insights import ports
from services.insights.domain.activity import activity_of
from services.insights.domain.model import (
    ZERO,
    Breakpoints,
    Feedback,
    MemberFacts,
    PointsUse,
    Purchase,
    Rules,
)
from services.insights.domain.segments import Change, CustomSegment

R = TypeVar("R")


def _keep(keyed: dict[str, R], rows: Iterable[R], key: Callable[[R], str]) -> None:
    """Each row once by its key, as the SQL's ON CONFLICT DO NOTHING keeps it."""
    for row in rows:
        keyed.setdefault(key(row), row)


@dataclass
class Member:
    customer_id: str
    partner_id: str | None = None
    enrolled_at: datetime | None = None
    referred_by: str | None = None
    version: int | None = None


@dataclass
class FakeInsights(ports.ConsumerRepository, ports.JobRepository):
    members: dict[str, Member] = field(default_factory=dict)
    erased: dict[str, datetime] = field(default_factory=dict)
    tiers: dict[tuple[str, datetime], str] = field(default_factory=dict)
    purchases: dict[str, ports.PurchaseFact] = field(default_factory=dict)
    refunds: dict[str, ports.RefundFact] = field(default_factory=dict)
    campaign: set[tuple[str, str]] = field(default_factory=set)
    movements: dict[str, ports.Movement] = field(default_factory=dict)
    perks: dict[str, ports.Perk] = field(default_factory=dict)
    revoked: dict[str, datetime] = field(default_factory=dict)
    feedback: dict[str, ports.FeedbackFact] = field(default_factory=dict)
    custom: list[CustomSegment] = field(default_factory=list)
    segments: dict[tuple[str, str], datetime] = field(default_factory=dict)
    stored_breakpoints: Breakpoints | None = None
    locked: list[list[str]] = field(default_factory=list)

    async def erased_among(self, customer_ids: Collection[str]) -> set[str]:
        return set(customer_ids) & set(self.erased)

    async def lock_members(self, customer_ids: Sequence[str]) -> None:
        ids = sorted(set(customer_ids))
        for customer_id in ids:
            self.members.setdefault(customer_id, Member(customer_id))
        self.locked.append(ids)

    async def record(self, facts: ports.Facts) -> None:
        for profile in facts.profiles:
            self._profile(profile)
        for tier in facts.tiers:
            self.tiers.setdefault((tier.customer_id, tier.effective_at), tier.tier)
        _keep(self.purchases, facts.purchases, lambda row: row.purchase_key)
        _keep(self.refunds, facts.refunds, lambda row: row.refund_key)
        _keep(self.movements, facts.movements, lambda row: row.event_id)
        _keep(self.perks, facts.perks, lambda row: row.perk_key)
        _keep(self.feedback, facts.feedback, lambda row: row.feedback_key)
        self.campaign |= {(c.customer_id, c.purchase_id) for c in facts.campaign_purchases}
        for revocation in facts.revocations:
            self.revoked.setdefault(revocation.perk_key, revocation.revoked_at)

    def _profile(self, profile: ports.Profile) -> None:
        member = self.members.setdefault(profile.customer_id, Member(profile.customer_id))
        if member.version is not None and (profile.version or 0) < member.version:
            return
        member.partner_id = profile.partner_id
        member.enrolled_at = profile.enrolled_at
        member.referred_by = member.referred_by or profile.referred_by
        member.version = profile.version

    async def erase(self, erased: Mapping[str, datetime]) -> None:
        for customer_id, at in erased.items():
            self.members.pop(customer_id, None)
            self.erased.setdefault(customer_id, at)
            self.tiers = {k: v for k, v in self.tiers.items() if k[0] != customer_id}
            for keyed in (self.purchases, self.refunds, self.movements, self.perks, self.feedback):
                for key in [k for k, v in keyed.items() if v.customer_id == customer_id]:
                    del keyed[key]
            self.campaign = {c for c in self.campaign if c[0] != customer_id}
            self.segments = {k: v for k, v in self.segments.items() if k[1] != customer_id}

    async def facts_of(
        self, customer_ids: Sequence[str], as_of: datetime, rules: Rules
    ) -> dict[str, MemberFacts]:
        return {
            customer_id: self._facts(customer_id, as_of, rules)
            for customer_id in customer_ids
            if customer_id in self.members
        }

    def _facts(self, customer_id: str, as_of: datetime, rules: Rules) -> MemberFacts:
        member, start = self.members[customer_id], as_of - rules.window
        tiers = sorted(
            (at, t) for (c, at), t in self.tiers.items() if c == customer_id and at <= as_of
        )
        moves = [
            m
            for m in self.movements.values()
            if m.customer_id == customer_id and start < m.occurred_at <= as_of
        ]
        return MemberFacts(
            customer_id=customer_id,
            enrolled_at=member.enrolled_at,
            tier=tiers[-1][1] if tiers else None,
            activity=activity_of(
                self.purchases_of(customer_id, as_of), as_of, rules.window, rules.lapse
            ),
            points=PointsUse(
                earned=sum(m.points for m in moves if m.kind in ("earned", "imported")),
                redeemed=-sum(m.points for m in moves if m.kind == "redeemed"),
                redemptions=sum(1 for m in moves if m.kind == "redeemed"),
            ),
            perks=sum(
                1
                for p in self.perks.values()
                if p.customer_id == customer_id
                and start < p.used_at <= as_of
                and not (p.perk_key in self.revoked and self.revoked[p.perk_key] <= as_of)
            ),
            referrals=sum(
                1
                for m in self.members.values()
                if m.referred_by == customer_id
                and m.enrolled_at is not None
                and m.enrolled_at <= as_of
            ),
            feedback=tuple(
                Feedback(f.given_at, f.kind, f.score)
                for f in self.feedback.values()
                if f.customer_id == customer_id and start < f.given_at <= as_of
            ),
        )

    def purchases_of(self, customer_id: str, as_of: datetime) -> list[Purchase]:
        return [
            Purchase(
                key=p.purchase_key,
                occurred_at=p.occurred_at,
                partner_id=p.partner_id,
                store_id=p.store_id,
                total=p.total,
                refunded=sum(
                    (
                        r.amount
                        for r in self.refunds.values()
                        if r.purchase_key == p.purchase_key and r.occurred_at <= as_of
                    ),
                    ZERO,
                ),
                in_campaign=(customer_id, p.purchase_id) in self.campaign,
            )
            for p in self.purchases.values()
            if p.customer_id == customer_id and p.occurred_at <= as_of
        ]

    async def breakpoints(self) -> Breakpoints | None:
        return self.stored_breakpoints

    async def custom_segments(self) -> list[CustomSegment]:
        return sorted(self.custom, key=lambda s: s.name)

    async def segments_of(self, customer_ids: Collection[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for segment, customer_id in self.segments:
            if customer_id in customer_ids:
                found.setdefault(customer_id, set()).add(segment)
        return found

    async def apply_changes(self, changes: Sequence[Change], at: datetime) -> None:
        for change in changes:
            if change.entered:
                self.segments.setdefault((change.segment, change.customer_id), at)
            else:
                self.segments.pop((change.segment, change.customer_id), None)

    async def compute_breakpoints(self, as_of: datetime, window: timedelta) -> Breakpoints:
        assert self.stored_breakpoints is not None, "a test sets the breakpoints it wants"
        self.stored_breakpoints = replace(self.stored_breakpoints, as_of=as_of)
        return self.stored_breakpoints

    async def member_ids_after(self, after: str, limit: int) -> list[str]:
        return sorted(c for c in self.members if c > after)[:limit]
