"""The inbox: an event id is applied at most once per service."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db import insert_if_absent


async def claim(
    conn: AsyncConnection, inbox: sa.Table, event_id: str, event_type: str, now: datetime
) -> bool:
    """True when this event id is new here; the claim commits or rolls back with the effect."""
    return await insert_if_absent(
        conn,
        inbox,
        dict(event_id=event_id, event_type=event_type, received_at=now),
    )
