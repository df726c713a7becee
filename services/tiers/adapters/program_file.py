"""Reads the tier program (tiers, thresholds, windows) from YAML, refusing anything malformed;
and writes and reads it as the canonical JSON a replay's switch stores."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.tiers.domain.model import (
    DowngradePolicy,
    Match,
    Program,
    SpendBasis,
    TierDefinition,
)
from shared.messaging.events import Money, TierName

DEFAULT_PROGRAM_FILE = Path(__file__).resolve().parent.parent / "program.yaml"


class _TierEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Only the names the tier.changed contract knows: anything else could never be announced.
    name: TierName
    # Per route, what reaches the tier (absent: not by that route); `match` any or all.
    threshold: Money | None = Field(default=None, ge=0)
    referrals: int | None = Field(default=None, ge=1, le=1_000_000)
    visits: int | None = Field(default=None, ge=1, le=1_000_000)
    match: Match = Match.ANY


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
    referral_return_window_days: int = Field(default=0, ge=0, le=365)

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {name!r}") from error
        return name


def load_program(path: Path = DEFAULT_PROGRAM_FILE) -> Program:
    """The program in the file; a ValueError (pydantic's ValidationError for a field of the
    wrong shape) whose message names the field, if it is not a valid program."""
    return _program(_ProgramFile.model_validate(yaml.safe_load(path.read_text())))


def program_json(program: Program) -> str:
    """The program as canonical JSON: equal programs give equal texts. What issue 25 added
    is written only when it differs from its default, so a spend-only program's text is
    what it was before (a replay of it under way resumes)."""
    document = dataclasses.asdict(program)
    if document["referral_return_window_days"] == 0:
        del document["referral_return_window_days"]
    for tier in document["tiers"]:
        if not tier.pop("spend_route"):
            tier["threshold"] = None
        for route, default in (("referrals", None), ("visits", None), ("match", Match.ANY)):
            if tier[route] == default:
                del tier[route]
    return json.dumps(document, default=str, sort_keys=True)


def program_from_json(text: str) -> Program:
    """The program `program_json` wrote, validated like a program file (ValueError if not)."""
    return _program(_ProgramFile.model_validate_json(text))


def _program(parsed: _ProgramFile) -> Program:
    return Program(
        currency=parsed.currency,
        tiers=tuple(
            TierDefinition(
                tier.name,
                Decimal(0) if tier.threshold is None else tier.threshold,
                tier.referrals,
                tier.visits,
                tier.match,
                spend_route=tier.threshold is not None,
            )
            for tier in parsed.tiers
        ),
        basis=parsed.basis,
        qualifying_window_days=parsed.qualifying_window_days,
        review_period_days=parsed.review_period_days,
        downgrade_policy=parsed.downgrade_policy,
        downgrade_warning_days=parsed.downgrade_warning_days,
        time_zone=parsed.time_zone,
        referral_return_window_days=parsed.referral_return_window_days,
    )
