"""The inbox: an event id is applied at most once per service."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.storage.batches import texts, unpacked
from shared.storage.db import insert_if_absent


async def claim(
    conn: AsyncConnection, inbox: sa.Table, event_id: str, event_type: str, now: datetime
) -> bool:
    """True when this event id is new here; the claim commits or rolls back with the effect."""
    return await insert_if_absent(
        conn,
        inbox,
        dict(event_id=event_id, event_type=event_type, received_at=now),
    )


async def claim_many(
    conn: AsyncConnection,
    inbox: sa.Table,
    events: Sequence[tuple[str, str]],
    now: datetime,
) -> set[str]:
    """Claims (event_id, event_type) pairs in one statement; returns the ids new here. A
    concurrent claim of the same id by another consumer waits for that one's transaction."""
    if not events:
        return set()
    statement = sa.text(
        f"INSERT INTO {inbox.name} (event_id, event_type, received_at) "  # noqa: S608  # a table name of ours
        "SELECT claimed.event_id, claimed.event_type, :now "
        f"FROM unnest({unpacked('ids')}, {unpacked('types')}) "
        "AS claimed(event_id, event_type) "
        "ON CONFLICT DO NOTHING RETURNING event_id"
    )
    result = await conn.execute(
        statement,
        {
            "ids": texts([event_id for event_id, _ in events]),
            "types": texts([event_type for _, event_type in events]),
            "now": now,
        },
    )
    return set(result.scalars())
