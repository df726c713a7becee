"""What the rules' use cases share: a rule the domain refuses is a 422 that names the field, an
unknown one a 404, an ended one a 409 to a change, a patch applied, and rewards as the API
shows them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from services.engagement.api.schemas import RewardIn, RewardOut, RulePatchIn
from services.engagement.domain.model import InvalidRule, Reward, Window
from services.engagement.ports import LockedRule, RuleT
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


def in_force(kind: str, rule_id: str, locked: LockedRule[RuleT] | None) -> RuleT:
    """The rule to change: a 404 when there is none, a 409 when a program manager ended it
    (an ended rule stays as it ended: make a new one)."""
    if locked is None:
        raise unknown(kind, rule_id)
    if locked.ended_at is not None:
        raise Problem(
            409,
            "Rule ended",
            f"the {kind.replace('-', ' ')} {rule_id!r} was ended: it cannot be changed",
            slug=f"{kind}-ended",
        )
    return locked.rule


def patched(kind: str, rule: RuleT, patch: RulePatchIn) -> RuleT:
    """The rule with the patch's fields, validated again by the domain (a 422 naming the field
    it refuses). A new `ends_at` keeps the window's start."""
    sent = patch.model_fields_set
    changes: dict[str, Any] = {name: getattr(patch, name) for name in sent - {"reward", "ends_at"}}
    try:
        if patch.reward is not None:
            changes["reward"] = reward_of(patch.reward)
        if "ends_at" in sent:
            changes["window"] = Window(starts_at=rule.window.starts_at, ends_at=patch.ends_at)
        return replace(rule, **changes)
    except InvalidRule as error:
        raise invalid(kind, error) from None
