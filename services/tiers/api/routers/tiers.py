"""The tier program: which tiers exist and what reaches them."""

from fastapi import APIRouter

from services.tiers.api.deps import ProgramsDep, ReadScope, RuntimeDep
from services.tiers.api.schemas import TierProgramOut
from services.tiers.usecases import tiers

router = APIRouter(prefix="/v1/tiers", tags=["tiers"])


@router.get("")
async def get_tiers(runtime: RuntimeDep, programs: ProgramsDep, _: ReadScope) -> TierProgramOut:
    return await tiers.program_in_force(runtime.engine, programs)
