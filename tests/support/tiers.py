"""What the tiers integration tests share beyond their fixtures."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from services.tiers.adapters import tables


async def forget_switched_programs(engine: AsyncEngine) -> None:
    """Puts the configured program back in force: a replay switched earlier on this stack (the
    e2e story's, a test's, a run before) would otherwise stay in force for the live service."""
    async with engine.begin() as conn:
        await conn.execute(
            tables.tier_replays.delete().where(tables.tier_replays.c.status != "running")
        )
