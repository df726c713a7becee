"""The tier program: which tiers exist and what reaches them."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from services.tiers.api.schemas import TierDefinitionOut, TierProgramOut
from services.tiers.programs import ProgramSource
from shared.storage.transactions import read_snapshot


async def program_in_force(engine: AsyncEngine, programs: ProgramSource) -> TierProgramOut:
    async with read_snapshot(engine) as conn:
        program = await programs.current(conn)
    return TierProgramOut(
        tiers=[
            TierDefinitionOut(
                name=t.name,
                threshold=t.spend_threshold,
                referrals=t.referrals,
                visits=t.visits,
                match=t.match.value,
            )
            for t in program.tiers
        ],
        currency=program.currency,
        basis=program.basis.value,
        qualifying_window_days=program.qualifying_window_days,
        review_period_days=program.review_period_days,
        downgrade_policy=program.downgrade_policy.value,
        downgrade_warning_days=program.downgrade_warning_days,
        time_zone=program.time_zone,
        referral_return_window_days=program.referral_return_window_days,
    )
