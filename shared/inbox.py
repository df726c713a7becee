"""The inbox: an event id is applied at most once per service."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection


async def claim(
    conn: AsyncConnection, inbox: sa.Table, event_id: str, event_type: str, now: datetime
) -> bool:
    """True when this event id is new here; the claim commits or rolls back with the effect."""
    result = await conn.execute(
        insert(inbox)
        .values(event_id=event_id, event_type=event_type, received_at=now)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(inbox.c.event_id)
    )
    return result.first() is not None
