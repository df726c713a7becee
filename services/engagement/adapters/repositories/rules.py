"""The rules' rows as domain rules, and their reads that both the consumer and the API run."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.engagement.adapters import tables
from services.engagement.domain.challenges import ChallengeRule, Goal
from services.engagement.domain.model import Reward, Scope, Window
from services.engagement.domain.stamps import StampCardRule

_cards = tables.stamp_card_rules
_challenges = tables.challenge_rules


def reward_of(row: sa.Row[tuple[object, ...]]) -> Reward | None:
    if row.reward_points is None and row.reward_id is None:
        return None
    return Reward(points=row.reward_points, reward_id=row.reward_id)


def stamp_card_of(row: sa.Row[tuple[object, ...]]) -> StampCardRule:
    reward = reward_of(row)
    assert reward is not None  # a stamp card always has one (the API requires it)
    return StampCardRule(
        card_id=row.card_id,
        name=row.name,
        stamps_required=row.stamps_required,
        per=row.per,
        scope=Scope(partner_id=row.partner_id, store_id=row.store_id, category=row.category),
        reward=reward,
        window=Window(starts_at=row.starts_at, ends_at=row.ends_at),
        min_amount=row.min_amount,
        min_tier=row.min_tier,
        tier=row.tier,
        segment=row.segment,
    )


def challenge_of(row: sa.Row[tuple[object, ...]]) -> ChallengeRule:
    return ChallengeRule(
        challenge_id=row.challenge_id,
        name=row.name,
        goal=Goal(
            kind=row.goal_kind,
            target=Decimal(row.target),
            category=row.goal_category,
            partner_id=row.goal_partner_id,
        ),
        window=Window(starts_at=row.starts_at, ends_at=row.ends_at),
        reward=reward_of(row),
        badge=row.badge,
        min_tier=row.min_tier,
        tier=row.tier,
        segment=row.segment,
    )


def stamp_card_row(rule: StampCardRule, created_at: datetime) -> dict[str, object]:
    return {
        "card_id": rule.card_id,
        "name": rule.name,
        "stamps_required": rule.stamps_required,
        "per": rule.per,
        "partner_id": rule.scope.partner_id,
        "store_id": rule.scope.store_id,
        "category": rule.scope.category,
        "min_amount": rule.min_amount,
        "min_tier": rule.min_tier,
        "tier": rule.tier,
        "segment": rule.segment,
        "reward_points": rule.reward.points,
        "reward_id": rule.reward.reward_id,
        "starts_at": rule.window.starts_at,
        "ends_at": rule.window.ends_at,
        "created_at": created_at,
    }


def challenge_row(rule: ChallengeRule, created_at: datetime) -> dict[str, object]:
    reward = rule.reward
    return {
        "challenge_id": rule.challenge_id,
        "name": rule.name,
        "goal_kind": rule.goal.kind,
        "target": rule.goal.target,
        "goal_category": rule.goal.category,
        "goal_partner_id": rule.goal.partner_id,
        "reward_points": reward.points if reward else None,
        "reward_id": reward.reward_id if reward else None,
        "badge": rule.badge,
        "min_tier": rule.min_tier,
        "tier": rule.tier,
        "segment": rule.segment,
        "starts_at": rule.window.starts_at,
        "ends_at": rule.window.ends_at,
        "created_at": created_at,
    }


class SqlRules:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def stamp_cards_in_force(self, since: datetime) -> list[StampCardRule]:
        """The rules not ended by a program manager whose window ends after `since`."""
        rows = await self._conn.execute(
            sa.select(_cards).where(
                sa.or_(_cards.c.ends_at.is_(None), _cards.c.ends_at > since),
                _cards.c.ended_at.is_(None),
            )
        )
        return [stamp_card_of(row) for row in rows]

    async def challenges_in_force(self, since: datetime) -> list[ChallengeRule]:
        rows = await self._conn.execute(
            sa.select(_challenges).where(
                _challenges.c.ends_at > since, _challenges.c.ended_at.is_(None)
            )
        )
        return [challenge_of(row) for row in rows]

    async def stamp_cards_by_id(self, card_ids: Collection[str]) -> dict[str, StampCardRule]:
        if not card_ids:
            return {}
        rows = await self._conn.execute(
            sa.select(_cards).where(_cards.c.card_id.in_(sorted(card_ids)))
        )
        return {row.card_id: stamp_card_of(row) for row in rows}

    async def segments_of(self, customer_ids: Collection[str]) -> dict[str, frozenset[str]]:
        if not customer_ids:
            return {}
        table = tables.segment_memberships
        rows = await self._conn.execute(
            sa.select(table.c.customer_id, table.c.segment).where(
                table.c.customer_id.in_(sorted(customer_ids)), table.c.member
            )
        )
        found: dict[str, set[str]] = {}
        for row in rows:
            found.setdefault(row.customer_id, set()).add(row.segment)
        return {customer_id: frozenset(segments) for customer_id, segments in found.items()}
