"""Reads the tier program (tiers, thresholds, windows) from YAML, refusing anything malformed;
and writes and reads it as the canonical JSON a replay's switch stores."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.tiers.domain.model import DowngradePolicy, Program, SpendBasis, TierDefinition
from shared.messaging.events import Money, TierName

DEFAULT_PROGRAM_FILE = Path(__file__).resolve().parent.parent / "program.yaml"


class _TierEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Only the names the tier.changed contract knows: anything else could never be announced.
    name: TierName
    threshold: Money = Field(ge=0)


class _ProgramFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: str = Field(min_length=3, max_length=3)
    tiers: list[_TierEntry] = Field(min_length=1)
    basis: SpendBasis
    qualifying_window_days: int = Field(ge=1)
    review_period_days: int = Field(ge=1)
    downgrade_policy: DowngradePolicy
    downgrade_warning_days: int = Field(ge=0)
    time_zone: str = Field(default="UTC", min_length=1, max_length=64)

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {name!r}") from error
        return name


def load_program(path: Path = DEFAULT_PROGRAM_FILE) -> Program:
    return _program(_ProgramFile.model_validate(yaml.safe_load(path.read_text())))


def program_json(program: Program) -> str:
    """The program as canonical JSON: equal programs give equal texts."""
    return json.dumps(dataclasses.asdict(program), default=str, sort_keys=True)


def program_from_json(text: str) -> Program:
    """The program `program_json` wrote, validated like a program file (ValueError if not)."""
    return _program(_ProgramFile.model_validate_json(text))


def _program(parsed: _ProgramFile) -> Program:
    return Program(
        currency=parsed.currency,
        tiers=tuple(TierDefinition(tier.name, tier.threshold) for tier in parsed.tiers),
        basis=parsed.basis,
        qualifying_window_days=parsed.qualifying_window_days,
        review_period_days=parsed.review_period_days,
        downgrade_policy=parsed.downgrade_policy,
        downgrade_warning_days=parsed.downgrade_warning_days,
        time_zone=parsed.time_zone,
    )
