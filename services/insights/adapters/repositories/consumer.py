"""What the consumer's batch handler (`handlers.apply_batch`) writes: each kind of fact of a
whole batch in one statement, a fact already kept passed over."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.insights.adapters import tables
from services.insights.adapters.repositories.common import SqlFacts
from services.insights.ports import Facts, Profile
from shared.storage.db import insert_many

_ERASED_FROM = (
    tables.tier_history,
    tables.purchases,
    tables.refunds,
    tables.campaign_purchases,
    tables.points_movements,
    tables.perks,
    tables.perk_revocations,
    tables.feedback,
    tables.segment_members,
    tables.members,
)


class SqlConsumerRepository(SqlFacts):
    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn)
        self._conn = conn

    async def erased_among(self, customer_ids: Collection[str]) -> set[str]:
        if not customer_ids:
            return set()
        column = tables.erased_members.c.customer_id
        rows = await self._conn.execute(sa.select(column).where(column.in_(list(customer_ids))))
        return set(rows.scalars())

    async def record(self, facts: Facts) -> None:
        await self._profiles(facts.profiles)
        for table, rows in (
            (tables.tier_history, facts.tiers),
            (tables.purchases, facts.purchases),
            (tables.refunds, facts.refunds),
            (tables.points_movements, facts.movements),
            (tables.perks, facts.perks),
            (tables.feedback, facts.feedback),
            (tables.campaign_purchases, facts.campaign_purchases),
            (tables.perk_revocations, facts.revocations),
        ):
            await insert_many(self._conn, table, [asdict(row) for row in rows])

    async def _profiles(self, profiles: list[Profile]) -> None:
        """The newest profile of each member (the highest version), the first referrer kept."""
        newest: dict[str, Profile] = {}
        for profile in profiles:
            kept = newest.get(profile.customer_id)
            if kept is None or (profile.version or 0) >= (kept.version or 0):
                newest[profile.customer_id] = profile
        if not newest:
            return
        statement = insert(tables.members)
        current = tables.members.c
        await self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=["customer_id"],
                set_={
                    "partner_id": statement.excluded.partner_id,
                    "enrolled_at": statement.excluded.enrolled_at,
                    "referred_by": sa.func.coalesce(
                        current.referred_by, statement.excluded.referred_by
                    ),
                    "profile_version": statement.excluded.profile_version,
                },
                where=sa.or_(
                    current.profile_version.is_(None),
                    sa.func.coalesce(statement.excluded.profile_version, 0)
                    >= current.profile_version,
                ),
            ),
            [
                {
                    "customer_id": p.customer_id,
                    "partner_id": p.partner_id,
                    "enrolled_at": p.enrolled_at,
                    "referred_by": p.referred_by,
                    "profile_version": p.version,
                }
                for p in sorted(newest.values(), key=lambda p: p.customer_id)
            ],
        )

    async def erase(self, erased: Mapping[str, datetime]) -> None:
        if not erased:
            return
        ids = list(erased)
        for table in _ERASED_FROM:
            await self._conn.execute(table.delete().where(table.c.customer_id.in_(ids)))
        await insert_many(
            self._conn,
            tables.erased_members,
            [{"customer_id": c, "erased_at": at} for c, at in sorted(erased.items())],
        )


def consumer_repository(conn: AsyncConnection) -> SqlConsumerRepository:
    return SqlConsumerRepository(conn)
