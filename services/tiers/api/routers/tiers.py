"""The tier program: which tiers exist and what reaches them."""

from fastapi import APIRouter

from services.tiers.api.deps import ProgramDep, ReadScope
from services.tiers.api.schemas import TierDefinitionOut, TierProgramOut

router = APIRouter(prefix="/v1/tiers", tags=["tiers"])


@router.get("")
async def get_tiers(program: ProgramDep, _: ReadScope) -> TierProgramOut:
    return TierProgramOut(
        tiers=[TierDefinitionOut(name=t.name, threshold=t.threshold) for t in program.tiers],
        currency=program.currency,
        basis=program.basis.value,
        qualifying_window_days=program.qualifying_window_days,
        review_period_days=program.review_period_days,
        downgrade_policy=program.downgrade_policy.value,
        downgrade_warning_days=program.downgrade_warning_days,
        time_zone=program.time_zone,
    )
