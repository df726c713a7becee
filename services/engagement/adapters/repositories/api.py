"""What the HTTP use cases read and write."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.engagement import ports
from services.engagement.adapters import tables
from services.engagement.adapters.repositories.rules import (
    SqlRules,
    challenge_of,
    challenge_row,
    stamp_card_of,
    stamp_card_row,
)
from services.engagement.domain.challenges import ChallengeRule, Contribution
from services.engagement.domain.model import refunded_share
from services.engagement.domain.stamps import StampCardRule

_cards = tables.stamp_card_rules
_challenges = tables.challenge_rules


def api_repository(conn: AsyncConnection) -> ports.ApiRepository:
    return SqlApiRepository(conn)


class SqlApiRepository(SqlRules):
    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn)
        self._conn = conn

    async def is_known(self, customer_id: str) -> bool:
        members = tables.members
        found = await self._conn.execute(
            sa.select(sa.literal(1)).where(members.c.customer_id == customer_id)
        )
        return found.first() is not None

    async def tier_of(self, customer_id: str) -> str | None:
        members = tables.members
        tier: str | None = (
            await self._conn.execute(
                sa.select(members.c.tier).where(members.c.customer_id == customer_id)
            )
        ).scalar_one_or_none()
        return tier

    async def cards_of(self, customer_id: str) -> dict[str, tuple[int, int]]:
        cards = tables.stamp_cards
        rows = await self._conn.execute(
            sa.select(cards.c.card_id, cards.c.stamps, cards.c.completed_count).where(
                cards.c.customer_id == customer_id,
                sa.or_(cards.c.stamps > 0, cards.c.completed_count > 0),
            )
        )
        return {row.card_id: (row.stamps, row.completed_count) for row in rows}

    async def challenges_of(self, customer_id: str) -> list[ports.MemberChallenge]:
        progress = tables.challenge_progress
        rows = (
            await self._conn.execute(
                sa.select(_challenges, progress.c.completed_at)
                .join(progress, progress.c.challenge_id == _challenges.c.challenge_id)
                .where(progress.c.customer_id == customer_id)
            )
        ).all()
        counted = await self._contributions(customer_id)
        return [
            ports.MemberChallenge(
                challenge_of(row), counted.get(row.challenge_id, []), row.completed_at
            )
            for row in rows
        ]

    async def _contributions(self, customer_id: str) -> dict[str, list[Contribution]]:
        table = tables.challenge_contributions
        rows = await self._conn.execute(
            sa.select(table)
            .where(table.c.customer_id == customer_id)
            .order_by(table.c.occurred_at, table.c.source_key)
        )
        found: dict[str, list[Contribution]] = {}
        for row in rows:
            found.setdefault(row.challenge_id, []).append(
                Contribution(
                    source_id=row.source_key,
                    occurred_at=row.occurred_at,
                    amount=row.amount,
                    partner_id=row.partner_id,
                    categories=frozenset(row.categories),
                    refunded_share=refunded_share(row.total, row.refunded),
                )
            )
        return found

    async def badges_of(self, customer_id: str) -> list[ports.Badge]:
        table = tables.badges
        rows = await self._conn.execute(
            sa.select(table).where(table.c.customer_id == customer_id).order_by(table.c.earned_at)
        )
        return [
            ports.Badge(row.customer_id, row.badge, row.challenge_id, row.earned_at) for row in rows
        ]

    async def add_stamp_card(self, rule: StampCardRule, created_at: datetime) -> None:
        await self._conn.execute(_cards.insert().values(stamp_card_row(rule, created_at)))

    async def add_challenge(self, rule: ChallengeRule, created_at: datetime) -> None:
        await self._conn.execute(_challenges.insert().values(challenge_row(rule, created_at)))

    async def stamp_card(self, card_id: str) -> StampCardRule | None:
        row = (
            await self._conn.execute(sa.select(_cards).where(_cards.c.card_id == card_id))
        ).first()
        return stamp_card_of(row) if row is not None else None

    async def challenge(self, challenge_id: str) -> ChallengeRule | None:
        row = (
            await self._conn.execute(
                sa.select(_challenges).where(_challenges.c.challenge_id == challenge_id)
            )
        ).first()
        return challenge_of(row) if row is not None else None

    async def all_stamp_cards(self) -> list[StampCardRule]:
        rows = await self._conn.execute(sa.select(_cards).order_by(_cards.c.created_at))
        return [stamp_card_of(row) for row in rows]

    async def all_challenges(self) -> list[ChallengeRule]:
        rows = await self._conn.execute(sa.select(_challenges).order_by(_challenges.c.created_at))
        return [challenge_of(row) for row in rows]

    async def end_stamp_card(self, card_id: str, at: datetime) -> bool:
        return await self._end(_cards, _cards.c.card_id == card_id, at)

    async def end_challenge(self, challenge_id: str, at: datetime) -> bool:
        return await self._end(_challenges, _challenges.c.challenge_id == challenge_id, at)

    async def stamp_card_for_update(self, card_id: str) -> ports.LockedRule[StampCardRule] | None:
        row = (
            await self._conn.execute(
                sa.select(_cards).where(_cards.c.card_id == card_id).with_for_update()
            )
        ).first()
        return ports.LockedRule(stamp_card_of(row), row.ended_at) if row is not None else None

    async def challenge_for_update(
        self, challenge_id: str
    ) -> ports.LockedRule[ChallengeRule] | None:
        row = (
            await self._conn.execute(
                sa.select(_challenges)
                .where(_challenges.c.challenge_id == challenge_id)
                .with_for_update()
            )
        ).first()
        return ports.LockedRule(challenge_of(row), row.ended_at) if row is not None else None

    async def replace_stamp_card(self, rule: StampCardRule) -> None:
        # Only what a PATCH may change: the card's stamps_required, per, scope and start stay.
        await self._conn.execute(
            _cards.update()
            .where(_cards.c.card_id == rule.card_id)
            .values(
                name=rule.name,
                reward_points=rule.reward.points,
                reward_id=rule.reward.reward_id,
                ends_at=rule.window.ends_at,
                min_tier=rule.min_tier,
                tier=rule.tier,
                segment=rule.segment,
                min_amount=rule.min_amount,
            )
        )

    async def replace_challenge(self, rule: ChallengeRule) -> None:
        # Only what a PATCH may change: the goal and the start stay.
        reward = rule.reward
        await self._conn.execute(
            _challenges.update()
            .where(_challenges.c.challenge_id == rule.challenge_id)
            .values(
                name=rule.name,
                reward_points=reward.points if reward else None,
                reward_id=reward.reward_id if reward else None,
                badge=rule.badge,
                ends_at=rule.window.ends_at,
                min_tier=rule.min_tier,
                tier=rule.tier,
                segment=rule.segment,
            )
        )

    async def _end(self, table: sa.Table, which: sa.ColumnElement[bool], at: datetime) -> bool:
        """Ends the rule at `at`: its window closes then (unless it closes earlier) and
        nothing read from then on counts for it. A rule that had not begun is removed
        (nothing can have counted for it). False when there is no such rule."""
        removed = await self._conn.execute(table.delete().where(which, table.c.starts_at >= at))
        if removed.rowcount:
            return True
        ends_at = table.c.ends_at
        ended = await self._conn.execute(
            table.update()
            .where(which)
            .values(
                ends_at=sa.case((sa.or_(ends_at.is_(None), ends_at > at), at), else_=ends_at),
                ended_at=sa.func.coalesce(table.c.ended_at, at),
            )
        )
        return bool(ended.rowcount)
