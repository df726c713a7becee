"""A member's stamp cards, challenges and badges, as the wallet and the till show them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from services.engagement import ports
from services.engagement.adapters.repositories.api import api_repository
from services.engagement.api.schemas import (
    BadgeOut,
    BadgesOut,
    MemberChallengeOut,
    MemberChallengesOut,
    MemberStampCardOut,
    MemberStampCardsOut,
)
from services.engagement.domain import challenges as challenge_rules
from services.engagement.domain.challenges import ChallengeRule
from services.engagement.domain.model import targets
from services.engagement.domain.stamps import StampCardRule
from services.engagement.usecases.challenges import goal_out
from services.engagement.usecases.rules import reward_out
from shared.storage.transactions import read_snapshot
from shared.web.problems import Problem


def unknown_customer(customer_id: str) -> Problem:
    return Problem(
        404,
        "Not found",
        f"engagement knows no customer {customer_id!r}",
        slug="unknown-customer",
    )


async def stamp_cards_of(
    engine: AsyncEngine, customer_id: str, now: datetime
) -> MemberStampCardsOut:
    """The member's cards: those they have stamps on or completed, and the cards in force
    they may collect (empty; a targeted card only to the members it targets now)."""
    async with read_snapshot(engine) as conn:
        engagement = await _known(api_repository(conn), customer_id)
        held = await engagement.cards_of(customer_id)
        audience = await _audience(engagement, customer_id)
        in_force = await engagement.stamp_cards_in_force(now)
        rules = {
            **{r.card_id: r for r in in_force if _open_to(r, audience, now)},
            **await engagement.stamp_cards_by_id(held),
        }
    items = [_card_out(rule, *held.get(card_id, (0, 0))) for card_id, rule in sorted(rules.items())]
    return MemberStampCardsOut(customer_id=customer_id, items=items)


async def challenges_of(
    engine: AsyncEngine, customer_id: str, now: datetime
) -> MemberChallengesOut:
    """The challenges the member has progress in, and those in force they may take up (a
    targeted one only when it targets them now)."""
    async with read_snapshot(engine) as conn:
        engagement = await _known(api_repository(conn), customer_id)
        taken = {c.rule.challenge_id: c for c in await engagement.challenges_of(customer_id)}
        audience = await _audience(engagement, customer_id)
        offered = [
            ports.MemberChallenge(rule, [], None)
            for rule in await engagement.challenges_in_force(now)
            if rule.challenge_id not in taken and _open_to(rule, audience, now)
        ]
    every = sorted(
        [*taken.values(), *offered], key=lambda c: (c.rule.window.starts_at, c.rule.challenge_id)
    )
    return MemberChallengesOut(customer_id=customer_id, items=[_challenge_out(c) for c in every])


async def badges_of(engine: AsyncEngine, customer_id: str) -> BadgesOut:
    async with read_snapshot(engine) as conn:
        engagement = await _known(api_repository(conn), customer_id)
        badges = await engagement.badges_of(customer_id)
    return BadgesOut(
        customer_id=customer_id,
        items=[
            BadgeOut(badge=b.badge, challenge_id=b.challenge_id, earned_at=b.earned_at)
            for b in badges
        ],
    )


async def _known(engagement: ports.ApiRepository, customer_id: str) -> ports.ApiRepository:
    if not await engagement.is_known(customer_id):
        raise unknown_customer(customer_id)
    return engagement


async def _audience(
    engagement: ports.ApiRepository, customer_id: str
) -> tuple[str | None, frozenset[str]]:
    """The member's tier and the segments they are in now."""
    segments = await engagement.segments_of([customer_id])
    return await engagement.tier_of(customer_id), segments.get(customer_id, frozenset())


def _open_to(
    rule: StampCardRule | ChallengeRule, audience: tuple[str | None, frozenset[str]], now: datetime
) -> bool:
    """In force now and targeting the member (their tier and segments now): a rule of a
    segment they are not in is not offered."""
    return rule.window.contains(now) and targets(rule, *audience)


def _card_out(rule: StampCardRule, stamps: int, completed_count: int) -> MemberStampCardOut:
    return MemberStampCardOut(
        card_id=rule.card_id,
        name=rule.name,
        stamps=stamps,
        stamps_required=rule.stamps_required,
        completed_count=completed_count,
        per=rule.per,
        reward=reward_out(rule.reward),
        ends_at=rule.window.ends_at,
    )


def _challenge_out(challenge: ports.MemberChallenge) -> MemberChallengeOut:
    rule = challenge.rule
    return MemberChallengeOut(
        challenge_id=rule.challenge_id,
        name=rule.name,
        goal=goal_out(rule.goal),
        progress=challenge_rules.progress(rule, challenge.contributions),
        target=rule.goal.target,
        completed_at=challenge.completed_at,
        starts_at=rule.window.starts_at,
        ends_at=rule.window.ends_at,
        badge=rule.badge,
        reward=reward_out(rule.reward) if rule.reward is not None else None,
    )
