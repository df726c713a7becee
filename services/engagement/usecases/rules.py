"""What the stamp-card and challenge use cases share: a rule the domain refuses is a 422 that
names the field, an unknown one a 404, and rewards as the API shows them."""

from __future__ import annotations

from services.engagement.api.schemas import RewardIn, RewardOut
from services.engagement.domain.model import InvalidRule, Reward
from shared.web.problems import Problem


def invalid(kind: str, error: InvalidRule) -> Problem:
    return Problem(
        422,
        f"Invalid {kind.replace('-', ' ')}",
        f"{error.field}: {error.problem}",
        slug=f"invalid-{kind}",
    )


def unknown(kind: str, rule_id: str) -> Problem:
    return Problem(
        404, "Not found", f"no {kind.replace('-', ' ')} {rule_id!r}", slug=f"unknown-{kind}"
    )


def reward_of(reward: RewardIn) -> Reward:
    return Reward(points=reward.points, reward_id=reward.reward_id)


def reward_out(reward: Reward) -> RewardOut:
    return RewardOut(points=reward.points, reward_id=reward.reward_id)
