"""In-memory stand-in for the engagement database, typed against the service's ports so that
mypy checks it keeps up with them. Each method does what the SQL adapter's statement does
(`services/engagement/adapters/repositories/consumer.py`), conflicts included."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from services.engagement import ports
from services.engagement.domain.birthdays import Birthday
from services.engagement.domain.challenges import ChallengeRule, Contribution
from services.engagement.domain.feedback import Feedback, FeedbackReward
from services.engagement.domain.model import Membership, Purchase, refunded_share
from services.engagement.domain.stamps import Card, StampCardRule
from services.engagement.domain.surprises import BudgetKey, MemberKey, SurpriseRule, Win
from services.engagement.ports import (
    Badge,
    CardKey,
    ChallengeKey,
    CompletedCard,
    CompletionKey,
    Counted,
    StampPurchase,
)


@dataclass
class Member:
    enrolled_at: datetime | None = None
    tier: str | None = None
    referred_by: str | None = None
    first_purchase: Purchase | None = None
    # Part B: the birthday and time zone of the latest profile, and its version.
    birthday: Birthday | None = None
    time_zone: str | None = None
    profile_version: int | None = None

    def referral(self, customer_id: str) -> ports.FirstPurchase | None:
        first = self.first_purchase
        if self.referred_by is None or first is None:
            return None
        return ports.FirstPurchase(
            self.referred_by, customer_id, first.key, first.occurred_at, first.total
        )


@dataclass
class StoredCompletion:
    completed: CompletedCard
    revoked_at: datetime | None = None


@dataclass
class StoredContribution:
    counted: Counted
    refunded: Decimal = Decimal(0)


@dataclass
class FakeEngagement(ports.ConsumerRepository):
    """The set-based consumer repository in memory; `calls` names each method called, in
    order, so a test can tell a batch costs one call per step, not one per event."""

    stamp_rules: list[StampCardRule] = field(default_factory=list)
    challenge_rules: list[ChallengeRule] = field(default_factory=list)
    members: dict[str, Member] = field(default_factory=dict)
    cards: dict[CardKey, Card] = field(default_factory=dict)
    stamp_purchases: dict[tuple[str, str], StampPurchase] = field(default_factory=dict)
    completions: dict[str, StoredCompletion] = field(default_factory=dict)  # by grant id
    refunds_seen: dict[str, str] = field(default_factory=dict)  # refund key -> customer
    contributions: dict[tuple[str, str, str], StoredContribution] = field(default_factory=dict)
    progress: dict[ChallengeKey, datetime | None] = field(default_factory=dict)  # completed_at
    badges: dict[tuple[str, str], Badge] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    # Rules --------------------------------------------------------------------------------

    async def stamp_cards_in_force(self, since: datetime) -> list[StampCardRule]:
        self.calls.append("stamp_cards_in_force")
        return [r for r in self.stamp_rules if r.window.ends_at is None or r.window.ends_at > since]

    async def challenges_in_force(self, since: datetime) -> list[ChallengeRule]:
        self.calls.append("challenges_in_force")
        return [
            r
            for r in self.challenge_rules
            if r.window.ends_at is not None and r.window.ends_at > since
        ]

    async def stamp_cards_by_id(self, card_ids: Collection[str]) -> dict[str, StampCardRule]:
        self.calls.append("stamp_cards_by_id")
        return {r.card_id: r for r in self.stamp_rules if r.card_id in card_ids}

    # Members ------------------------------------------------------------------------------

    async def enrol(
        self, enrolled: Mapping[str, datetime], referred_by: Mapping[str, str]
    ) -> list[ports.FirstPurchase]:
        self.calls.append("enrol")
        referrals = []
        for customer_id, at in sorted(enrolled.items()):
            member = self.members.setdefault(customer_id, Member())
            member.enrolled_at = at
            member.referred_by = member.referred_by or referred_by.get(customer_id)
            if (referral := member.referral(customer_id)) is not None:
                referrals.append(referral)
        return referrals

    async def note_first_purchases(self, firsts: Sequence[Purchase]) -> list[ports.FirstPurchase]:
        self.calls.append("note_first_purchases")
        referrals = []
        for purchase in sorted(firsts, key=lambda p: p.customer_id):
            member = self.members.setdefault(purchase.customer_id, Member())
            if member.first_purchase is not None:
                continue
            member.first_purchase = purchase
            if (referral := member.referral(purchase.customer_id)) is not None:
                referrals.append(referral)
        return referrals

    async def set_tiers(self, tiers: Mapping[str, str]) -> None:
        self.calls.append("set_tiers")
        for customer_id, tier in tiers.items():
            self.members.setdefault(customer_id, Member()).tier = tier

    async def tiers_of(self, customer_ids: Collection[str]) -> dict[str, str | None]:
        self.calls.append("tiers_of")
        return {c: self.members[c].tier for c in customer_ids if c in self.members}

    async def erase(self, customer_ids: Collection[str]) -> None:
        self.calls.append("erase")
        gone = set(customer_ids)
        for customer_id in gone:
            self.members.pop(customer_id, None)
        self.cards = {k: v for k, v in self.cards.items() if v.customer_id not in gone}
        self.stamp_purchases = {
            k: v for k, v in self.stamp_purchases.items() if v.customer_id not in gone
        }
        self.completions = {
            k: v for k, v in self.completions.items() if v.completed.customer_id not in gone
        }
        self.refunds_seen = {k: v for k, v in self.refunds_seen.items() if v not in gone}
        self.contributions = {k: v for k, v in self.contributions.items() if k[1] not in gone}
        self.progress = {k: v for k, v in self.progress.items() if k[1] not in gone}
        self.badges = {k: v for k, v in self.badges.items() if k[0] not in gone}
        self.surprise_wins = {
            k: v for k, v in self.surprise_wins.items() if v.win.customer_id not in gone
        }
        self.feedback = {k: v for k, v in self.feedback.items() if v.customer_id not in gone}
        self.feedback_grants = {
            k: v for k, v in self.feedback_grants.items() if v.customer_id not in gone
        }
        self.memberships = {k: v for k, v in self.memberships.items() if k[0] not in gone}

    # Stamp cards --------------------------------------------------------------------------

    async def record_stamps(self, given: Sequence[StampPurchase]) -> set[tuple[str, str]]:
        self.calls.append("record_stamps")
        new: set[tuple[str, str]] = set()
        for g in given:
            key = (g.card_id, g.purchase_key)
            if key not in self.stamp_purchases:
                self.stamp_purchases[key] = g
                new.add(key)
        return new

    async def lock_cards(self, keys: Collection[CardKey]) -> dict[CardKey, Card]:
        self.calls.append("lock_cards")
        for card_id, customer_id in keys:
            self.cards.setdefault((card_id, customer_id), Card(card_id, customer_id))
        return {key: self.cards[key] for key in keys}

    async def save_cards(self, cards: Sequence[Card]) -> None:
        self.calls.append("save_cards")
        for card in cards:
            if (card.card_id, card.customer_id) in self.cards:
                self.cards[(card.card_id, card.customer_id)] = card

    async def add_completions(self, completed: Sequence[CompletedCard]) -> None:
        """Like the SQL insert's ON CONFLICT DO NOTHING: a grant id recorded already, or a
        number of the card that stands already, is not added."""
        self.calls.append("add_completions")
        for c in completed:
            if c.grant_id in self.completions or self.standing(c.card_id, c.customer_id, c.number):
                continue
            self.completions[c.grant_id] = StoredCompletion(c)

    async def revoke_completions(
        self, completions: Collection[CompletionKey], at: datetime
    ) -> dict[CompletionKey, str]:
        self.calls.append("revoke_completions")
        revoked: dict[CompletionKey, str] = {}
        for key in completions:
            stored = self.standing(*key)
            if stored is not None:
                stored.revoked_at = at
                revoked[key] = stored.completed.grant_id
        return revoked

    def standing(self, card_id: str, customer_id: str, number: int) -> StoredCompletion | None:
        """The completion of that number not revoked (at most one)."""
        found = [
            s
            for s in self.completions.values()
            if s.revoked_at is None
            and (s.completed.card_id, s.completed.customer_id, s.completed.number)
            == (card_id, customer_id, number)
        ]
        assert len(found) <= 1, "one standing completion per number of a member's card"
        return found[0] if found else None

    async def record_refunds(self, refunds: Mapping[str, str]) -> set[str]:
        self.calls.append("record_refunds")
        new = {key for key in refunds if key not in self.refunds_seen}
        self.refunds_seen.update({key: refunds[key] for key in new})
        return new

    async def stamp_purchases_of(self, purchase_keys: Collection[str]) -> list[StampPurchase]:
        self.calls.append("stamp_purchases_of")
        return [
            self.stamp_purchases[key]
            for key in sorted(self.stamp_purchases)
            if key[1] in purchase_keys
        ]

    async def save_refunded(self, purchases: Sequence[StampPurchase]) -> None:
        self.calls.append("save_refunded")
        for p in purchases:
            key = (p.card_id, p.purchase_key)
            if key in self.stamp_purchases:
                self.stamp_purchases[key] = replace(self.stamp_purchases[key], refunded=p.refunded)

    # Challenges ---------------------------------------------------------------------------

    async def record_contributions(self, counted: Sequence[Counted]) -> set[tuple[str, ...]]:
        self.calls.append("record_contributions")
        new: set[tuple[str, ...]] = set()
        for c in counted:
            key = (c.challenge_id, c.customer_id, c.source_key)
            if key not in self.contributions:
                self.contributions[key] = StoredContribution(c)
                new.add(key)
        return new

    async def open_challenges(self, keys: Collection[ChallengeKey]) -> set[ChallengeKey]:
        self.calls.append("open_challenges")
        for key in keys:
            self.progress.setdefault(key, None)
        return {key for key in keys if self.progress[key] is None}

    async def contributions_of(
        self, keys: Collection[ChallengeKey]
    ) -> dict[ChallengeKey, list[Contribution]]:
        self.calls.append("contributions_of")
        stored = sorted(
            (s for k, s in self.contributions.items() if (k[0], k[1]) in keys),
            key=lambda s: (s.counted.contribution.occurred_at, s.counted.source_key),
        )
        found: dict[ChallengeKey, list[Contribution]] = {}
        for s in stored:
            c = s.counted
            found.setdefault((c.challenge_id, c.customer_id), []).append(
                replace(
                    c.contribution,
                    source_id=c.source_key,
                    refunded_share=refunded_share(c.total, s.refunded),
                )
            )
        return found

    async def complete_challenges(self, keys: Collection[ChallengeKey], at: datetime) -> None:
        self.calls.append("complete_challenges")
        for key in keys:
            if key in self.progress:
                self.progress[key] = at

    async def refund_contributions(self, refunded: Mapping[str, Decimal]) -> None:
        """Refunds take progress back only until the challenge is completed."""
        self.calls.append("refund_contributions")
        for (challenge_id, customer_id, source_key), s in self.contributions.items():
            if source_key in refunded and self.progress.get((challenge_id, customer_id)) is None:
                s.refunded = min(s.counted.total, s.refunded + refunded[source_key])

    async def add_badges(self, badges: Sequence[Badge]) -> set[tuple[str, str]]:
        self.calls.append("add_badges")
        new: set[tuple[str, str]] = set()
        for b in badges:
            if (b.customer_id, b.badge) not in self.badges:
                self.badges[(b.customer_id, b.badge)] = b
                new.add((b.customer_id, b.badge))
        return new

    # Birthdays ---------------------------------------------------------

    async def note_birthdays(self, profiles: Mapping[str, ports.ProfileBirthday]) -> None:
        self.calls.append("note_birthdays")
        for customer_id, profile in sorted(profiles.items()):
            member = self.members.setdefault(customer_id, Member())
            kept = member.profile_version
            if kept is not None and (profile.version is None or profile.version < kept):
                continue
            member.birthday = profile.birthday
            member.time_zone = profile.time_zone
            member.profile_version = profile.version

    # Surprises ---------------------------------------------------------

    surprise_rules: list[SurpriseRule] = field(default_factory=list)
    surprise_wins: dict[tuple[str, str], StoredWin] = field(default_factory=dict)  # rule, key
    budgets: dict[BudgetKey, int] = field(default_factory=dict)
    locked: set[MemberKey] = field(default_factory=set)  # what surprise_wins_of locked

    async def surprises_in_force(self, since: datetime) -> list[SurpriseRule]:
        self.calls.append("surprises_in_force")
        return [
            r for r in self.surprise_rules if r.window.ends_at is None or r.window.ends_at > since
        ]

    async def surprise_wins_of(self, keys: Collection[MemberKey]) -> dict[MemberKey, list[Win]]:
        self.calls.append("surprise_wins_of")
        self.locked.update(keys)
        found: dict[MemberKey, list[Win]] = {key: [] for key in keys}
        for stored in sorted(self.surprise_wins.values(), key=lambda s: s.win.won_at):
            w = stored.win
            if (w.surprise_id, w.customer_id) in found:
                found[(w.surprise_id, w.customer_id)].append(
                    Win(w.surprise_id, w.customer_id, w.purchase_key, w.won_at)
                )
        return found

    async def lock_budgets(self, keys: Collection[BudgetKey]) -> dict[BudgetKey, int]:
        self.calls.append("lock_budgets")
        for key in keys:
            self.budgets.setdefault(key, 0)
        return {key: self.budgets[key] for key in keys}

    async def save_budgets(self, spent: Mapping[BudgetKey, int]) -> None:
        self.calls.append("save_budgets")
        for key, points in spent.items():
            if key in self.budgets:
                self.budgets[key] = points

    async def record_surprise_wins(self, wins: Sequence[ports.SurpriseWin]) -> set[tuple[str, str]]:
        self.calls.append("record_surprise_wins")
        new: set[tuple[str, str]] = set()
        for w in wins:
            key = (w.surprise_id, w.purchase_key)
            if key not in self.surprise_wins:
                self.surprise_wins[key] = StoredWin(w)
                new.add(key)
        return new

    async def refund_surprise_wins(
        self, refunded: Mapping[str, Decimal], at: datetime
    ) -> list[ports.SurpriseWin]:
        """A win is revoked once, when its purchase's refunds reach its total."""
        self.calls.append("refund_surprise_wins")
        revoked = []
        for (_, purchase_key), stored in sorted(self.surprise_wins.items()):
            if purchase_key not in refunded or stored.revoked_at is not None:
                continue
            reached = stored.refunded + refunded[purchase_key]
            stored.refunded = min(stored.win.total, reached)
            if reached >= stored.win.total:
                stored.revoked_at = at
                revoked.append(stored.win)
        return revoked

    # Feedback --------------------------------------------------------------------

    feedback: dict[str, Feedback] = field(default_factory=dict)  # by feedback key
    feedback_config: FeedbackReward | None = None
    feedback_grants: dict[str, ports.FeedbackGrant] = field(default_factory=dict)  # purchase
    feedback_erased: set[str] = field(default_factory=set)

    async def note_feedback_erased(self, customer_ids: Collection[str], at: datetime) -> None:
        self.calls.append("note_feedback_erased")
        self.feedback_erased |= set(customer_ids)

    async def record_feedback(self, given: Sequence[Feedback]) -> set[str]:
        self.calls.append("record_feedback")
        new = set()
        for f in given:
            if f.key not in self.feedback and f.customer_id not in self.feedback_erased:
                self.feedback[f.key] = f
                new.add(f.key)
        return new

    async def feedback_reward(self) -> FeedbackReward | None:
        self.calls.append("feedback_reward")
        return self.feedback_config

    async def record_feedback_rewards(self, grants: Sequence[ports.FeedbackGrant]) -> set[str]:
        self.calls.append("record_feedback_rewards")
        new = set()
        for g in grants:
            if g.purchase_key not in self.feedback_grants:
                self.feedback_grants[g.purchase_key] = g
                new.add(g.purchase_key)
        return new

    # Segments (the read model of insights' segment events) ------------------------

    memberships: dict[tuple[str, str], Membership] = field(default_factory=dict)

    async def note_segments(self, changes: Collection[Membership]) -> None:
        """Like the SQL upsert: the newest change by `Membership.rank` stays; nothing of a
        member erased is kept; one change per (customer_id, segment), as the statement needs."""
        self.calls.append("note_segments")
        keys = [(m.customer_id, m.segment) for m in changes]
        assert len(keys) == len(set(keys)), "one change per member and segment a statement"
        for change in changes:
            key = (change.customer_id, change.segment)
            kept = self.memberships.get(key)
            if change.customer_id in self.feedback_erased:
                continue
            if kept is None or change.rank > kept.rank:
                self.memberships[key] = change

    async def segments_of(self, customer_ids: Collection[str]) -> dict[str, frozenset[str]]:
        self.calls.append("segments_of")
        found: dict[str, set[str]] = {}
        for (customer_id, segment), kept in self.memberships.items():
            if customer_id in customer_ids and kept.member:
                found.setdefault(customer_id, set()).add(segment)
        return {c: frozenset(segments) for c, segments in found.items()}


@dataclass
class StoredWin:
    win: ports.SurpriseWin
    refunded: Decimal = Decimal(0)
    revoked_at: datetime | None = None
