"""Segments: the built-in ones (each loyalty type, lifecycle stage and tier) and the custom ones
an admin defines over the same features; a member's memberships with the reasons."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from services.insights.domain.model import LIFECYCLE_STAGES, LOYALTY_TYPES, TIERS, Features

_TYPE_DESCRIPTIONS = {
    "happy": "buys regularly, no complaint, little use of the program",
    "price": "most purchases inside campaigns",
    "program": "redeems much of what it earns",
    "convenience": "one partner or store, a steady rhythm",
    "perks": "sporadic purchases, many free perks used",
    "truly_loyal": "frequent, high value, refers friends or gives good feedback",
}
_STAGE_DESCRIPTIONS = {
    "new": "enrolled recently",
    "active": "buying",
    "at_risk": "no purchase for a while",
    "lapsed": "no purchase for long: win-back",
    "won_back": "bought again after a lapse",
}


def built_in_segments() -> dict[str, str]:
    """Every built-in segment's name and what its members have in common."""
    return {
        **{f"loyalty:{name}": _TYPE_DESCRIPTIONS[name] for name in LOYALTY_TYPES},
        **{f"lifecycle:{stage}": _STAGE_DESCRIPTIONS[stage] for stage in LIFECYCLE_STAGES},
        **{f"tier:{tier}": f"members in tier {tier}" for tier in TIERS},
    }


@dataclass(frozen=True)
class Criteria:
    """What a member of a custom segment has: every condition given holds (a list: any of it)."""

    lifecycle: tuple[str, ...] = ()
    loyalty_types: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    min_r: int | None = None
    min_f: int | None = None
    min_m: int | None = None
    max_r: int | None = None
    max_f: int | None = None
    max_m: int | None = None
    max_recency_days: int | None = None
    min_frequency: int | None = None
    min_monetary: Decimal | None = None


@dataclass(frozen=True)
class CustomSegment:
    name: str
    description: str
    criteria: Criteria


def _any_of(wanted: Sequence[str], have: Iterable[str], what: str) -> str | bool | None:
    """A reason when one of `wanted` is had, False when none is, None when nothing is wanted."""
    if not wanted:
        return None
    found = sorted(set(wanted) & set(have))
    return f"{what} {', '.join(found)}" if found else False


def _bounds(criteria: Criteria, features: Features) -> list[str | bool | None]:
    rfm = features.rfm
    scores = {"r": rfm.r, "f": rfm.f, "m": rfm.m}
    checks: list[str | bool | None] = []
    for name, score in scores.items():
        low, high = getattr(criteria, f"min_{name}"), getattr(criteria, f"max_{name}")
        if low is None and high is None:
            continue
        within = score is not None and (low or 1) <= score <= (high or 5)
        checks.append(f"{name} score {score}" if within else False)
    checks.append(_at_most(criteria.max_recency_days, rfm.recency_days, "days since a purchase"))
    checks.append(_at_least(criteria.min_frequency, rfm.frequency, "purchases"))
    checks.append(_at_least(criteria.min_monetary, rfm.monetary, "spent"))
    return checks


def _at_most(limit: int | None, value: int | None, what: str) -> str | bool | None:
    if limit is None:
        return None
    return f"{value} {what}" if value is not None and value <= limit else False


def _at_least(limit: Decimal | int | None, value: Decimal | int, what: str) -> str | bool | None:
    if limit is None:
        return None
    return f"{value} {what}" if value >= limit else False


def matches(criteria: Criteria, features: Features) -> tuple[str, ...] | None:
    """The reasons a member is in, or None when a condition fails."""
    checks = [
        _any_of(criteria.lifecycle, [features.lifecycle], "lifecycle"),
        _any_of(criteria.loyalty_types, [t.type for t in features.loyalty_types], "type"),
        _any_of(criteria.tiers, [features.tier], "tier"),
        *_bounds(criteria, features),
    ]
    if any(check is False for check in checks):
        return None
    return tuple(check for check in checks if isinstance(check, str))


def memberships(features: Features, custom: Sequence[CustomSegment]) -> dict[str, tuple[str, ...]]:
    """Every segment the member is in, with the reasons."""
    found: dict[str, tuple[str, ...]] = {
        f"loyalty:{kind.type}": kind.reasons for kind in features.loyalty_types
    }
    found[f"lifecycle:{features.lifecycle}"] = (features.lifecycle_reason,)
    found[f"tier:{features.tier}"] = (f"tier {features.tier}",)
    for segment in custom:
        reasons = matches(segment.criteria, features)
        if reasons is not None:
            found[segment.name] = reasons or ("every member",)
    return found


def with_segments(features: Features, custom: Sequence[CustomSegment]) -> Features:
    return replace(features, segments=memberships(features, custom))


@dataclass(frozen=True)
class Change:
    customer_id: str
    segment: str
    entered: bool
    reasons: tuple[str, ...] = ()


def changes(
    customer_id: str, now_in: Mapping[str, tuple[str, ...]], was_in: Iterable[str]
) -> list[Change]:
    """The entries and exits that take a member from `was_in` to `now_in`."""
    before = set(was_in)
    entered = [Change(customer_id, s, True, now_in[s]) for s in sorted(set(now_in) - before)]
    left = [Change(customer_id, s, False) for s in sorted(before - set(now_in))]
    return entered + left
