"""What notifications tells a member of engagement (product §8): a full stamp card, a challenge
met, a badge earned, a surprise reward, a birthday present. Pure: no I/O.

Each message is made from its event's data only (names, counts, the reward when the event
carries it), never from personal data, and goes the way every message goes: the member's
channels, locale, consent, quiet hours and daily cap, decided at send time.

One message per achievement:
- a reward granted for a stamp card or a challenge is told by the completion event
  (`stampcard.completed`, `challenge.completed`); its `engagement.rewarded` sends nothing
  more. Only a surprise's and a birthday's reward, which have no other event, are told from
  `engagement.rewarded` (`REWARD_TEMPLATES`).
- a challenge completed with a badge is one message, not two: `challenge.completed` names the
  badge, and `challenge_completed` and `badge_earned` share one id per member, challenge and
  channel (handlers.achievement_id), so whichever comes first is the one sent; within a batch
  the challenge's wins, since it names both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STAMP_CARD_COMPLETED = "stamp_card_completed"
CHALLENGE_COMPLETED = "challenge_completed"
BADGE_EARNED = "badge_earned"
SURPRISE = "surprise"
BIRTHDAY = "birthday"

# The reasons of `engagement.rewarded` that are their own message, and its template. The
# others (stamp_card, challenge, feedback) are told by another event, or not at all.
REWARD_TEMPLATES: Mapping[str, str] = {"surprise": SURPRISE, "birthday": BIRTHDAY}


def reward_template(reason: str) -> str | None:
    """The template that tells a member of a reward granted for `reason`, or None when the
    reward is told by another message (a completed stamp card or challenge) or not told."""
    return REWARD_TEMPLATES.get(reason)


def reward_params(points: int | None, reward_id: str | None) -> dict[str, Any]:
    """The reward a message names: its points, or the catalogue reward's id (whose coupon,
    when it is one, comes in its own message). Neither: the reward is not known to the event,
    and the message says only that one is on its way (`rewarded`)."""
    if points is not None:
        return {"rewarded": True, "points": points}
    if reward_id is not None:
        return {"rewarded": True, "reward_id": reward_id}
    return {}


def stamp_card_params(
    *, card_id: str, name: str, stamps_required: int, completed_count: int
) -> dict[str, Any]:
    """A full card: its name, how many stamps filled it and how many of it the member has
    filled; a full card always earns its reward (the event names the grant)."""
    return {
        "card_id": card_id,
        "name": name,
        "stamps_required": stamps_required,
        "completed_count": completed_count,
        "rewarded": True,
    }


def challenge_params(
    *, challenge_id: str, name: str, badge: str | None, rewarded: bool
) -> dict[str, Any]:
    """A challenge met: its name, the badge it gives (if any) and whether a reward comes."""
    params: dict[str, Any] = {"challenge_id": challenge_id, "name": name, "rewarded": rewarded}
    if badge is not None:
        params["badge"] = badge
    return params


def badge_params(*, challenge_id: str, badge: str) -> dict[str, Any]:
    return {"challenge_id": challenge_id, "badge": badge}


def granted_params(
    *, rule_id: str, name: str, points: int | None, reward_id: str | None
) -> dict[str, Any]:
    """A surprise's or a birthday's reward: the rule's name and the reward."""
    return {"rule_id": rule_id, "name": name} | reward_params(points, reward_id)
