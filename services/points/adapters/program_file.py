"""Reads the points program (the rules' numbers) from YAML, refusing anything malformed with
an error that names the bad field, so that a service with a broken program never starts."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from services.points.domain.model import Program, WinBackOffer
from shared import bounds
from shared.bounds import MAX_TIER_MULTIPLIER

DEFAULT_PROGRAM_FILE = Path(__file__).resolve().parent.parent / "program.yaml"

TierName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
# Within what the ledger's 32-bit points were sized for (see shared/bounds.py).
TierMultiplier = Annotated[Decimal, Field(ge=1, le=MAX_TIER_MULTIPLIER)]


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a known IANA time zone") from None
    return name


TimeZoneName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_known_zone)]


class ProgramError(ValueError):
    """The program file cannot be used; the message names the file and the bad field."""


# Written as a string ("2", "1.5"), as a campaign's; at most what the offer's event carries.
OfferMultiplier = Annotated[Decimal, Field(ge=1, le=100, max_digits=5, decimal_places=2)]


class _WinBackOfferFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: bounds.Label
    days: int = Field(ge=1, le=365)
    multiplier: OfferMultiplier | None = None
    bonus: int | None = Field(default=None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _gives_something(self) -> _WinBackOfferFile:
        if self.multiplier is None and self.bonus is None:
            raise ValueError("an offer needs a multiplier, a bonus or both")
        return self


class _ProgramFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    # At most 1, as the ledger's 32-bit points were sized for (see shared/bounds.py).
    points_per_unit: Decimal = Field(gt=0, le=1)
    # The program's currency per point, for the settlement between partners.
    point_value: Decimal = Field(default=Decimal("0.01"), gt=0, le=1_000_000, decimal_places=6)
    welcome_bonus: int = Field(ge=0, le=1_000_000)
    referral_bonus: int = Field(default=200, ge=0, le=1_000_000)
    referral_min_purchase: Decimal = Field(
        default=Decimal("10.00"), ge=0, le=1_000_000, decimal_places=2
    )
    max_points_per_day: int = Field(default=5000, ge=0, le=100_000_000)
    time_zone: TimeZoneName = "UTC"
    pending_days: int = Field(ge=0, le=365)
    validity_months: int = Field(ge=1, le=120)
    hold_timeout_minutes: int = Field(default=15, ge=1, le=1440)
    expiry_warning_days: int = Field(default=30, ge=1, le=365)
    tier_multipliers: dict[TierName, TierMultiplier] = Field(min_length=1)
    refund_policy: Literal["unlimited", "within_balance"] = "unlimited"
    coupon_expiry: Literal["refund_points", "forfeit"] = "refund_points"
    # Made to a member entering `lifecycle:lapsed`; absent or null: none.
    win_back_offer: _WinBackOfferFile | None = None


def load_program(path: Path = DEFAULT_PROGRAM_FILE) -> Program:
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ProgramError(f"{path}: cannot be read as YAML ({type(error).__name__})") from None
    if not isinstance(document, dict):
        raise ProgramError(f"{path}: must be a mapping of the program's fields")
    try:
        parsed = _ProgramFile.model_validate(document)
    except ValidationError as error:
        raise ProgramError(f"{path}: {_first_problem(error)}") from None
    fields = parsed.model_dump(exclude={"win_back_offer"})
    offer = parsed.win_back_offer
    win_back = None if offer is None else WinBackOffer(**offer.model_dump())
    return Program(**fields, win_back_offer=win_back)


def _first_problem(error: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(part) for part in item['loc']) or 'program'}: {item['msg']}"
        for item in error.errors()
    ]
    return "; ".join(problems)
