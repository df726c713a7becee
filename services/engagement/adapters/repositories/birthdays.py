"""Birthdays: the birthday reward a program manager configured, and what the
birthday-rewards job reads and writes, each one statement (a chunk's at most two)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.engagement import ports
from services.engagement.adapters import tables
from services.engagement.domain.birthdays import Birthday, BirthdayReward, Celebrated
from services.engagement.domain.model import Reward

_reward = tables.birthday_reward
_members = tables.members


def birthday_repository(conn: AsyncConnection) -> ports.BirthdayRepository:
    return SqlBirthdays(conn)


class SqlBirthdays:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def birthday_reward(self) -> BirthdayReward | None:
        row = (await self._conn.execute(sa.select(_reward))).first()
        if row is None:
            return None
        reward = Reward(points=row.reward_points, reward_id=row.reward_id)
        return BirthdayReward(reward=reward, min_tier=row.min_tier)

    async def set_birthday_reward(self, reward: BirthdayReward, at: datetime) -> None:
        values = {
            "reward_points": reward.reward.points,
            "reward_id": reward.reward.reward_id,
            "min_tier": reward.min_tier,
            "updated_at": at,
        }
        statement = insert(_reward).values(id=True, **values)
        await self._conn.execute(
            statement.on_conflict_do_update(index_elements=["id"], set_=values)
        )

    async def stop_birthday_reward(self) -> bool:
        result = await self._conn.execute(_reward.delete().returning(_reward.c.id))
        return result.first() is not None

    async def zones_celebrating(self, birthdays: Collection[Birthday]) -> set[str]:
        if not birthdays:
            return set()
        born = sa.tuple_(_members.c.birthday_month, _members.c.birthday_day)
        rows = await self._conn.execute(
            sa.select(_members.c.time_zone)
            .distinct()
            .where(
                _members.c.birthday_month.is_not(None),
                born.in_([(b.month, b.day) for b in sorted(birthdays)]),
            )
        )
        return {row.time_zone for row in rows if row.time_zone is not None}

    async def celebrants(
        self, celebrated: Sequence[Celebrated], after: str, limit: int
    ) -> list[ports.Celebrant]:
        if not celebrated:
            return []
        rows = await self._conn.execute(
            _CELEBRANTS,
            {
                "zones": [c.zone for c in celebrated],
                "months": [c.birthday.month for c in celebrated],
                "days": [c.birthday.day for c in celebrated],
                "years": [c.year for c in celebrated],
                "after": after,
                "limit": limit,
            },
        )
        return [ports.Celebrant(row.customer_id, row.year, row.tier) for row in rows]

    async def record_grants(self, grants: Sequence[ports.BirthdayGrant], at: datetime) -> set[str]:
        if not grants:
            return set()
        table = tables.birthday_grants
        rows = [
            {"customer_id": g.customer_id, "year": g.year, "grant_id": g.grant_id, "granted_at": at}
            for g in sorted(grants, key=lambda g: (g.customer_id, g.year))
        ]
        result = await self._conn.execute(
            insert(table).on_conflict_do_nothing().returning(table.c.grant_id), rows
        )
        return {row.grant_id for row in result}


# The members (in id order, after `after`) whose zone and birthday are celebrated now, each
# with the year it counts for, who have no reward for that year yet. The index on (month,
# day, zone, customer_id) finds them without reading the other members.
_CELEBRANTS = sa.text(
    "SELECT m.customer_id, m.tier, t.year FROM members AS m "
    "JOIN unnest(CAST(:zones AS text[]), CAST(:months AS smallint[]), "
    "CAST(:days AS smallint[]), CAST(:years AS int[])) AS t(zone, month, day, year) "
    "ON m.birthday_month = t.month AND m.birthday_day = t.day AND m.time_zone = t.zone "
    "WHERE m.birthday_month IS NOT NULL AND m.customer_id > :after "
    "AND NOT EXISTS (SELECT 1 FROM birthday_grants AS g "
    "WHERE g.customer_id = m.customer_id AND g.year = t.year) "
    "ORDER BY m.customer_id LIMIT :limit"
)
