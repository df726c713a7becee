"""What the insights API's use cases read and write besides the facts: custom segments, member
counts and a segment's members a page at a time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.insights.adapters import tables
from services.insights.adapters.repositories.common import SqlFacts, segment_of
from services.insights.domain.segments import CustomSegment

_definitions = tables.segment_definitions
_members = tables.segment_members


class SqlApiRepository(SqlFacts):
    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn)
        self._conn = conn

    async def add_segment(
        self, name: str, description: str, criteria: dict[str, Any], at: datetime
    ) -> bool:
        """False when a segment of the name exists."""
        row = {"name": name, "description": description, "criteria": criteria, "created_at": at}
        result = await self._conn.execute(
            insert(_definitions).values(row).on_conflict_do_nothing().returning(_definitions.c.name)
        )
        return result.first() is not None

    async def segment(self, name: str, *, for_update: bool = False) -> CustomSegment | None:
        query = sa.select(_definitions).where(_definitions.c.name == name)
        row = (await self._conn.execute(query.with_for_update() if for_update else query)).first()
        return None if row is None else segment_of(row)

    async def criteria_document(self, name: str) -> dict[str, Any] | None:
        query = sa.select(_definitions.c.criteria).where(_definitions.c.name == name)
        found: dict[str, Any] | None = (await self._conn.execute(query)).scalar()
        return found

    async def replace_segment(self, name: str, description: str, criteria: dict[str, Any]) -> None:
        await self._conn.execute(
            _definitions.update()
            .where(_definitions.c.name == name)
            .values(description=description, criteria=criteria)
        )

    async def delete_segment(self, name: str) -> bool:
        result = await self._conn.execute(
            _definitions.delete().where(_definitions.c.name == name).returning(_definitions.c.name)
        )
        return result.first() is not None

    async def member_counts(self) -> dict[str, int]:
        rows = await self._conn.execute(
            sa.select(_members.c.segment, sa.func.count()).group_by(_members.c.segment)
        )
        return {segment: int(count) for segment, count in rows}

    async def segment_criteria(self) -> dict[str, dict[str, Any]]:
        rows = await self._conn.execute(sa.select(_definitions.c.name, _definitions.c.criteria))
        return {name: criteria for name, criteria in rows}

    async def members_page(
        self, segment: str, after: str, limit: int
    ) -> list[tuple[str, datetime, list[str]]]:
        rows = await self._conn.execute(
            sa.select(_members.c.customer_id, _members.c.since, _members.c.reasons)
            .where(_members.c.segment == segment, _members.c.customer_id > after)
            .order_by(_members.c.customer_id)
            .limit(limit)
        )
        return [(row.customer_id, row.since, list(row.reasons)) for row in rows]


def api_repository(conn: AsyncConnection) -> SqlApiRepository:
    return SqlApiRepository(conn)
