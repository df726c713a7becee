"""The storage the engagement handler and use cases need, as Protocols: the SQL adapters
(`adapters/repositories/`) and the unit tests' fakes implement them."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Generic, Protocol, TypeVar

from services.engagement.domain.birthdays import Birthday, BirthdayReward, Celebrated
from services.engagement.domain.challenges import ChallengeRule, Contribution
from services.engagement.domain.feedback import Feedback, FeedbackReward, Nps
from services.engagement.domain.model import Membership, Purchase
from services.engagement.domain.stamps import Card, StampCardRule
from services.engagement.domain.surprises import BudgetKey, MemberKey, SurpriseRule, Win

CardKey = tuple[str, str]  # (card_id, customer_id)
ChallengeKey = tuple[str, str]  # (challenge_id, customer_id)
CompletionKey = tuple[str, str, int]  # (card_id, customer_id, number)
RuleT = TypeVar("RuleT", StampCardRule, ChallengeRule, SurpriseRule)


@dataclass(frozen=True)
class StampPurchase:
    """The stamps one purchase gave on one card, and what of the purchase was refunded."""

    card_id: str
    customer_id: str
    purchase_key: str
    given: int
    total: Decimal
    refunded: Decimal = Decimal(0)


@dataclass(frozen=True)
class CompletedCard:
    grant_id: str
    card_id: str
    customer_id: str
    number: int
    purchase_key: str
    completed_at: datetime


@dataclass(frozen=True)
class Counted:
    """A contribution to a member's challenge, keyed by what it came from."""

    challenge_id: str
    customer_id: str
    source_key: str
    contribution: Contribution
    total: Decimal


@dataclass(frozen=True)
class FirstPurchase:
    """A referred member's first purchase: it makes the referral count for the referrer."""

    referrer: str
    member: str
    purchase_key: str
    occurred_at: datetime
    total: Decimal


@dataclass(frozen=True)
class Badge:
    customer_id: str
    badge: str
    challenge_id: str
    earned_at: datetime


class RuleRepository(Protocol):
    async def stamp_cards_in_force(self, since: datetime) -> list[StampCardRule]:
        """The rules a program manager has not ended whose window ends after `since`."""

    async def challenges_in_force(self, since: datetime) -> list[ChallengeRule]: ...

    async def stamp_cards_by_id(self, card_ids: Collection[str]) -> dict[str, StampCardRule]: ...

    async def segments_of(self, customer_ids: Collection[str]) -> dict[str, frozenset[str]]:
        """The segments each member is in now (a member in none is left out), one read."""


class ConsumerRepository(RuleRepository, Protocol):
    """What `handlers.apply_batch` reads and writes: each method one statement for the batch."""

    async def enrol(
        self, enrolled: Mapping[str, datetime], referred_by: Mapping[str, str]
    ) -> list[FirstPurchase]:
        """Records the members' enrolment and who referred them (the first referrer named
        stays); the first purchases of the referred members whose first purchase is known."""

    async def note_first_purchases(self, firsts: Sequence[Purchase]) -> list[FirstPurchase]:
        """Records each member's first purchase unless one is recorded; those of referred
        members among the ones recorded now."""

    async def set_tiers(self, tiers: Mapping[str, str]) -> None: ...

    async def tiers_of(self, customer_ids: Collection[str]) -> dict[str, str | None]: ...

    async def note_segments(self, changes: Collection[Membership]) -> None:
        """Keeps, per member and segment, the newest change (`Membership.rank`): one older than
        the one kept changes nothing; a member erased (`note_feedback_erased`) is not noted.
        At most one change per (customer_id, segment)."""

    async def record_stamps(self, given: Sequence[StampPurchase]) -> set[tuple[str, str]]:
        """The (card_id, purchase_key) pairs new to engagement among `given`."""

    async def lock_cards(self, keys: Collection[CardKey]) -> dict[CardKey, Card]:
        """The members' cards, new ones empty, locked until the transaction ends."""

    async def save_cards(self, cards: Sequence[Card]) -> None: ...

    async def add_completions(self, completed: Sequence[CompletedCard]) -> None: ...

    async def revoke_completions(
        self, completions: Collection[CompletionKey], at: datetime
    ) -> dict[CompletionKey, str]:
        """Takes back these completed cards not taken back yet: their grant ids."""

    async def record_refunds(self, refunds: Mapping[str, str]) -> set[str]:
        """The refund keys (to their customer) new to engagement."""

    async def stamp_purchases_of(self, purchase_keys: Collection[str]) -> list[StampPurchase]:
        """The stamps the purchases gave, locked until the transaction ends."""

    async def save_refunded(self, purchases: Sequence[StampPurchase]) -> None: ...

    async def record_contributions(self, counted: Sequence[Counted]) -> set[tuple[str, ...]]:
        """The (challenge_id, customer_id, source_key) new to engagement among `counted`."""

    async def open_challenges(self, keys: Collection[ChallengeKey]) -> set[ChallengeKey]:
        """The members' challenges not completed yet, locked until the transaction ends."""

    async def contributions_of(
        self, keys: Collection[ChallengeKey]
    ) -> dict[ChallengeKey, list[Contribution]]: ...

    async def complete_challenges(self, keys: Collection[ChallengeKey], at: datetime) -> None: ...

    async def refund_contributions(self, refunded: Mapping[str, Decimal]) -> None:
        """Adds each purchase key's refunded amount to what it gave challenges still open."""

    async def add_badges(self, badges: Sequence[Badge]) -> set[tuple[str, str]]:
        """The (customer_id, badge) pairs new among `badges`."""

    async def erase(self, customer_ids: Collection[str]) -> None: ...

    async def note_birthdays(self, profiles: Mapping[str, ProfileBirthday]) -> None:
        """Keeps each member's birthday and time zone from their latest profile (a profile
        whose version is below the one kept changes nothing; one without a birthday clears
        it)."""

    # Surprises

    async def surprises_in_force(self, since: datetime) -> list[SurpriseRule]:
        """The surprise rules not ended whose window ends after `since`."""

    async def surprise_wins_of(self, keys: Collection[MemberKey]) -> dict[MemberKey, list[Win]]:
        """The members' wins of the rules, each (rule, member) locked until the transaction
        ends first (so two consumers cannot both admit a win within one cooldown)."""

    async def lock_budgets(self, keys: Collection[BudgetKey]) -> dict[BudgetKey, int]:
        """The points each rule's day spent, new days 0, locked until the transaction ends."""

    async def save_budgets(self, spent: Mapping[BudgetKey, int]) -> None: ...

    async def record_surprise_wins(self, wins: Sequence[SurpriseWin]) -> set[tuple[str, str]]:
        """The (surprise_id, purchase_key) pairs new among `wins`."""

    async def refund_surprise_wins(
        self, refunded: Mapping[str, Decimal], at: datetime
    ) -> list[SurpriseWin]:
        """Adds each purchase key's refunded amount to its wins not revoked; those it wholly
        refunds are revoked at `at`: returned."""

    # Feedback

    async def note_feedback_erased(self, customer_ids: Collection[str], at: datetime) -> None:
        """Remembers that these members were erased: their feedback read later is dropped."""

    async def record_feedback(self, given: Sequence[Feedback]) -> set[str]:
        """Keeps each feedback unless it is kept or its member was erased; the keys kept now."""

    async def feedback_reward(self) -> FeedbackReward | None:
        """The program's feedback reward, None when there is none."""

    async def record_feedback_rewards(self, grants: Sequence[FeedbackGrant]) -> set[str]:
        """The purchase keys among `grants` that no feedback reward was granted for yet."""


@dataclass(frozen=True)
class MemberCard:
    rule: StampCardRule
    stamps: int
    completed_count: int


@dataclass(frozen=True)
class MemberChallenge:
    rule: ChallengeRule
    contributions: list[Contribution]
    completed_at: datetime | None


@dataclass(frozen=True)
class LockedRule(Generic[RuleT]):
    """A rule read to be changed, its row locked until the transaction ends; `ended_at`: when
    a program manager ended it (None: in force)."""

    rule: RuleT
    ended_at: datetime | None


class ApiRepository(RuleRepository, Protocol):
    async def is_known(self, customer_id: str) -> bool: ...

    async def tier_of(self, customer_id: str) -> str | None: ...

    async def cards_of(self, customer_id: str) -> dict[str, tuple[int, int]]:
        """card_id -> (stamps, completed_count) of the member's cards."""

    async def challenges_of(self, customer_id: str) -> list[MemberChallenge]:
        """The challenges the member has progress in."""

    async def badges_of(self, customer_id: str) -> list[Badge]: ...

    async def add_stamp_card(self, rule: StampCardRule, created_at: datetime) -> None: ...

    async def add_challenge(self, rule: ChallengeRule, created_at: datetime) -> None: ...

    async def stamp_card(self, card_id: str) -> StampCardRule | None: ...

    async def challenge(self, challenge_id: str) -> ChallengeRule | None: ...

    async def all_stamp_cards(self) -> list[StampCardRule]: ...

    async def all_challenges(self) -> list[ChallengeRule]: ...

    async def end_stamp_card(self, card_id: str, at: datetime) -> bool: ...

    async def end_challenge(self, challenge_id: str, at: datetime) -> bool: ...

    async def stamp_card_for_update(self, card_id: str) -> LockedRule[StampCardRule] | None: ...

    async def challenge_for_update(self, challenge_id: str) -> LockedRule[ChallengeRule] | None: ...

    async def replace_stamp_card(self, rule: StampCardRule) -> None:
        """Writes what a PATCH may change of the card (name, reward, ends_at, min_tier, tier,
        segment, min_amount), one UPDATE."""

    async def replace_challenge(self, rule: ChallengeRule) -> None:
        """Writes what a PATCH may change of the challenge (name, reward, badge, ends_at,
        min_tier, tier, segment), one UPDATE."""


# Birthdays -------------------------------------------------------------


@dataclass(frozen=True)
class ProfileBirthday:
    """What a profile says of a member's birthday: month and day (None: no birthday), time
    zone, and the profile's version (None in events from before versions existed)."""

    birthday: Birthday | None
    time_zone: str
    version: int | None


@dataclass(frozen=True)
class Celebrant:
    """A member whose birthday it is, not rewarded yet for `year`."""

    customer_id: str
    year: int
    tier: str | None


@dataclass(frozen=True)
class BirthdayGrant:
    customer_id: str
    year: int
    grant_id: str


class BirthdayRepository(Protocol):
    """The birthday reward (one, or none: stopped) and the job's reads and writes."""

    async def birthday_reward(self) -> BirthdayReward | None: ...

    async def set_birthday_reward(self, reward: BirthdayReward, at: datetime) -> None: ...

    async def stop_birthday_reward(self) -> bool:
        """False when there was none."""

    async def zones_celebrating(self, birthdays: Collection[Birthday]) -> set[str]:
        """The time zones of the members born on one of these days."""

    async def celebrants(
        self, celebrated: Sequence[Celebrated], after: str, limit: int
    ) -> list[Celebrant]:
        """The members after `after` (in id order, at most `limit`) whose zone and birthday
        are among `celebrated`, without a grant for its year."""

    async def record_grants(self, grants: Sequence[BirthdayGrant], at: datetime) -> set[str]:
        """The grant ids new among `grants` (one per member and year)."""


# Surprises ---------------------------------------------------------------


@dataclass(frozen=True)
class SurpriseWin:
    surprise_id: str
    customer_id: str
    purchase_key: str
    grant_id: str
    won_at: datetime
    total: Decimal


@dataclass(frozen=True)
class RecordedWin:
    grant_id: str
    won_at: datetime
    revoked_at: datetime | None


class SurpriseRepository(Protocol):
    """What the surprise rules' API reads and writes."""

    async def add_surprise(self, rule: SurpriseRule, created_at: datetime) -> None: ...

    async def surprise(self, surprise_id: str) -> SurpriseRule | None: ...

    async def all_surprises(self) -> list[SurpriseRule]: ...

    async def end_surprise(self, surprise_id: str, at: datetime) -> bool: ...

    async def win_of(self, surprise_id: str, purchase_key: str) -> RecordedWin | None: ...

    async def surprise_for_update(self, surprise_id: str) -> LockedRule[SurpriseRule] | None: ...

    async def replace_surprise(self, rule: SurpriseRule) -> None:
        """Writes what a PATCH may change of the rule (name, reward, chance, daily_budget,
        cooldown_days, ends_at, min_tier, tier, segment), one UPDATE."""


# Feedback --------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackGrant:
    """The feedback reward of one purchase."""

    purchase_key: str
    customer_id: str
    feedback_key: str
    grant_id: str
    granted_at: datetime


class FeedbackRepository(Protocol):
    """What the feedback API reads and writes."""

    async def feedback_reward(self) -> FeedbackReward | None: ...

    async def set_feedback_reward(self, config: FeedbackReward, at: datetime) -> None: ...

    async def stop_feedback_reward(self) -> bool:
        """Removes the feedback reward; whether there was one."""

    async def nps(
        self,
        partner_id: str | None,
        store_id: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> Nps:
        """The NPS of the `nps` feedback given at the partner and store (each when named)
        from `since` (included) to `until` (excluded), computed in SQL."""
