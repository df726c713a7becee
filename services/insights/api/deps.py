"""Every dependency the insights routers take, as Annotated aliases."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import Depends

from services.insights.adapters.program_file import load_rules
from services.insights.domain.model import Rules
from services.insights.settings import InsightsSettings
from shared.web.deps import AdminScope, ClockDep, ReadScope, RuntimeDep, SettingsDep
from shared.web.idempotency import IdempotencyDep


@lru_cache(maxsize=4)
def _rules_in(path: Path) -> Rules:
    return load_rules(path)


async def get_rules(settings: SettingsDep) -> Rules:
    assert isinstance(settings, InsightsSettings)
    return _rules_in(settings.program_file)


RulesDep = Annotated[Rules, Depends(get_rules)]

__all__ = ["AdminScope", "ClockDep", "IdempotencyDep", "ReadScope", "RulesDep", "RuntimeDep"]
