"""Members' feedback (product.md §8): what engagement keeps of it, when it
earns a reward, and the Net Promoter Score. Pure Python: no framework, no I/O.

- A feedback earns the configured reward only when it names a purchase (feedback without one
  is never rewarded: nothing bounds how often a member could give it) and is of a rewarded
  kind; at most once per purchase, whatever feedback names it, because its grant id is
  derived from the purchase's key (`feedback_grant_id`), which points grants once.
- NPS counts `nps` feedback only: promoters score 9 to 10, passives 7 to 8, detractors 0 to 6;
  the score is the share of promoters minus the share of detractors, in percent, one decimal,
  halves away from zero (as PostgreSQL's `round(numeric, 1)`, which computes it in the report)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from services.engagement.domain.ids import derived_id
from services.engagement.domain.model import (
    InvalidRule,
    Reward,
    check_label,
    purchase_key,
)

FeedbackKind = Literal["review", "survey", "nps"]
KINDS: tuple[FeedbackKind, ...] = ("review", "survey", "nps")
# The rule id and name feedback rewards carry in `EngagementRewarded`.
RULE_ID = "feedback"
DEFAULT_NAME = "Thank you for your feedback"
PROMOTER_FROM = 9
PASSIVE_FROM = 7
NPS_PLACES = Decimal("0.1")


@dataclass(frozen=True)
class Feedback:
    """One feedback as engagement keeps it (the comment only here, erased with the member)."""

    feedback_id: str
    partner_id: str
    customer_id: str
    kind: FeedbackKind
    given_at: datetime
    store_id: str | None = None
    purchase_id: str | None = None
    score: int | None = None
    comment: str | None = None

    @property
    def key(self) -> str:
        """Unique across partners (feedback ids are each partner's own), as ingest keys it."""
        return f"{self.partner_id}:{self.feedback_id}"

    @property
    def purchase_key(self) -> str | None:
        return None if self.purchase_id is None else purchase_key(self.partner_id, self.purchase_id)


@dataclass(frozen=True)
class FeedbackReward:
    """What a program manager set: the reward, the kinds it is given for, the name the member
    reads."""

    reward: Reward
    kinds: frozenset[str] = frozenset(KINDS)
    name: str = DEFAULT_NAME

    def __post_init__(self) -> None:
        if not self.kinds:
            raise InvalidRule("kinds", "must name at least one kind")
        unknown = sorted(self.kinds - set(KINDS))
        if unknown:
            raise InvalidRule("kinds", f"must be among {', '.join(KINDS)}")
        check_label("name", self.name)


def rewardable(feedback: Feedback, config: FeedbackReward | None) -> bool:
    return config is not None and feedback.purchase_id is not None and feedback.kind in config.kinds


def feedback_grant_id(purchase_key: str) -> str:
    """One grant per purchase, whichever feedback (and how many) named it."""
    return derived_id("feedback", purchase_key)


def rewarded_once_per_purchase(
    given: Iterable[Feedback], config: FeedbackReward | None
) -> list[Feedback]:
    """The rewardable feedback among `given`, the first of each purchase only."""
    firsts: dict[str, Feedback] = {}
    for feedback in given:
        if rewardable(feedback, config) and feedback.purchase_key is not None:
            firsts.setdefault(feedback.purchase_key, feedback)
    return list(firsts.values())


Category = Literal["promoter", "passive", "detractor"]


def category_of(score: int) -> Category:
    if score >= PROMOTER_FROM:
        return "promoter"
    if score >= PASSIVE_FROM:
        return "passive"
    return "detractor"


@dataclass(frozen=True)
class Nps:
    count: int
    promoters: int
    passives: int
    detractors: int
    score: Decimal | None  # None when there is no answer


def nps_of(scores: Iterable[int]) -> Nps:
    """The NPS of these 0 to 10 scores, as the report's SQL computes it."""
    counts = {"promoter": 0, "passive": 0, "detractor": 0}
    for score in scores:
        counts[category_of(score)] += 1
    total = sum(counts.values())
    return Nps(
        count=total,
        promoters=counts["promoter"],
        passives=counts["passive"],
        detractors=counts["detractor"],
        score=nps_score(counts["promoter"], counts["detractor"], total),
    )


def nps_score(promoters: int, detractors: int, count: int) -> Decimal | None:
    if count == 0:
        return None
    exact = Decimal(100 * (promoters - detractors)) / Decimal(count)
    return exact.quantize(NPS_PLACES, rounding=ROUND_HALF_UP)
