"""Reads the insights rules' numbers from YAML (services/insights/program.yaml), refusing anything
malformed with an error that names the bad field, so a service with broken rules never starts.
Every number has a default: a file may name only what it changes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.insights.domain import model

DEFAULT_PROGRAM_FILE = Path(__file__).resolve().parent.parent / "program.yaml"

Days = Annotated[int, Field(ge=1, le=3650)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]
Share = Annotated[Decimal, Field(ge=0, le=1)]
Score = Annotated[int, Field(ge=1, le=5)]


class ProgramError(ValueError):
    """The rules cannot be used; the message names the file and the bad field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Lifecycle(_Strict):
    new_days: Days = 30
    at_risk_days: Days = 45
    lapsed_days: Days = 90
    won_back_days: Days = 60

    @model_validator(mode="after")
    def _ordered(self) -> _Lifecycle:
        if self.at_risk_days >= self.lapsed_days:
            raise ValueError("at_risk_days must be fewer than lapsed_days")
        return self


class _Happy(_Strict):
    min_purchases: Count = 4
    max_redeemed_share: Share = Decimal("0.2")
    max_perks: Count = 1


class _Price(_Strict):
    min_purchases: Count = 3
    min_campaign_share: Share = Decimal("0.6")


class _Program(_Strict):
    min_points_earned: Count = 100
    min_redeemed_share: Share = Decimal("0.5")
    min_redemptions: Count = 2


class _Convenience(_Strict):
    min_purchases: Count = 4
    min_place_share: Share = Decimal("0.8")
    max_rhythm_variation: Annotated[Decimal, Field(ge=0, le=10)] = Decimal("0.5")


class _Perks(_Strict):
    max_purchases: Count = 3
    min_perks: Count = 2


class _TrulyLoyal(_Strict):
    min_f_score: Score = 4
    min_m_score: Score = 4
    min_referrals: Count = 1
    min_promoter_feedback: Count = 1


class _Loyalty(_Strict):
    happy: _Happy = _Happy()
    price: _Price = _Price()
    program: _Program = _Program()
    convenience: _Convenience = _Convenience()
    perks: _Perks = _Perks()
    truly_loyal: _TrulyLoyal = _TrulyLoyal()


class _Feedback(_Strict):
    nps_complaint_max: Annotated[int, Field(ge=0, le=10)] = 6
    nps_promoter_min: Annotated[int, Field(ge=0, le=10)] = 9
    review_complaint_max: Annotated[int, Field(ge=1, le=5)] = 2
    review_promoter_min: Annotated[int, Field(ge=1, le=5)] = 5


class _Rules(_Strict):
    window_days: Days = 365
    entry_tier: Annotated[str, Field(pattern=r"^(bronze|silver|gold|platinum)$")] = "bronze"
    lifecycle: _Lifecycle = _Lifecycle()
    loyalty_types: _Loyalty = _Loyalty()
    feedback: _Feedback = _Feedback()


def rules_of(parsed: _Rules) -> model.Rules:
    loyalty = parsed.loyalty_types
    return model.Rules(
        window_days=parsed.window_days,
        entry_tier=parsed.entry_tier,
        lifecycle=model.LifecycleRules(**parsed.lifecycle.model_dump()),
        loyalty=model.LoyaltyRules(
            happy=model.HappyRule(**loyalty.happy.model_dump()),
            price=model.PriceRule(**loyalty.price.model_dump()),
            program=model.ProgramRule(**loyalty.program.model_dump()),
            convenience=model.ConvenienceRule(**loyalty.convenience.model_dump()),
            perks=model.PerksRule(**loyalty.perks.model_dump()),
            truly_loyal=model.TrulyLoyalRule(**loyalty.truly_loyal.model_dump()),
        ),
        feedback=model.FeedbackRules(**parsed.feedback.model_dump()),
    )


def parse_rules(document: Any, source: str = "rules") -> model.Rules:
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ProgramError(f"{source}: must be a mapping of the rules' fields")
    try:
        return rules_of(_Rules.model_validate(document))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'rules'}: {item['msg']}"
            for item in error.errors()
        )
        raise ProgramError(f"{source}: {problems}") from None


def load_rules(path: Path = DEFAULT_PROGRAM_FILE) -> model.Rules:
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ProgramError(f"{path}: cannot be read as YAML ({type(error).__name__})") from None
    return parse_rules(document, str(path))
