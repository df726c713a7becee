"""Reads the points program (the rules' numbers) from YAML, refusing anything malformed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from services.points.domain.model import Program

DEFAULT_PROGRAM_FILE = Path(__file__).resolve().parent.parent / "program.yaml"


class _ProgramFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: str = Field(min_length=3, max_length=3)
    points_per_unit: Decimal = Field(gt=0)
    welcome_bonus: int = Field(ge=0)
    pending_days: int = Field(ge=0)
    validity_months: int = Field(ge=1)
    tier_multipliers: dict[str, Decimal]


def load_program(path: Path = DEFAULT_PROGRAM_FILE) -> Program:
    parsed = _ProgramFile.model_validate(yaml.safe_load(path.read_text()))
    return Program(**parsed.model_dump())
