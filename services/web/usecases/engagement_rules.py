"""Engagement's rules in the console: stamp cards, challenges and surprises (engagement
`GET/POST /v1/<kind>`, `DELETE /v1/<kind>/{id}` ends a rule now). Each is made with its
essential fields: a reward in points or a catalogue reward_id, a window, a scope, a tier or
segment; the rest keep the service's defaults (PATCH stays with the API)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from services.web.ports import Services
from services.web.usecases.campaigns import (
    IDENTIFIER,
    TIERS,
    Fields,
    FormInvalid,
    Listing,
    Outcome,
    listing_of,
    outcome_of,
    refused,
    scope_of,
    without_empty,
)

KINDS = ("stamp-cards", "challenges", "surprises")
GOALS = ("purchases", "spend", "distinct_partners", "categories", "referrals", "streak_weeks")
PER = ("purchase", "item")
AMOUNT = re.compile(r"^[0-9]{1,6}(\.[0-9]{1,2})?$")
CHANCE = re.compile(r"^(0(\.[0-9]{1,9})?|1(\.0{1,9})?)$")


def reward_of(fields: Fields) -> dict[str, Any]:
    """Points or a catalogue reward: exactly one, as engagement requires."""
    points = fields.whole("reward_points", 1, 1_000_000)
    reward_id = fields.matching("reward_id", IDENTIFIER)
    if (points is None) == (reward_id is None):
        raise FormInvalid("reward_points", "program.reward.one")
    return without_empty({"points": points, "reward_id": reward_id})


def _window(fields: Fields, *, end_required: bool = False) -> dict[str, Any]:
    return {
        "starts_at": fields.instant("starts_at", required=True),
        "ends_at": fields.instant("ends_at", required=end_required),
    }


def stamp_card_body(form: Mapping[str, str]) -> dict[str, Any]:
    fields = Fields(form)
    body = {
        "name": fields.text("name", required=True),
        "stamps_required": fields.whole("stamps_required", 1, 1_000, required=True),
        "per": fields.choice("per", PER),
        "min_amount": fields.matching("min_amount", AMOUNT),
        "min_tier": fields.choice("min_tier", TIERS),
        "reward": reward_of(fields),
        **_window(fields),
        **scope_of(fields),
    }
    return without_empty(body)


def challenge_body(form: Mapping[str, str]) -> dict[str, Any]:
    fields = Fields(form)
    scope = scope_of(fields)
    goal = {
        "kind": fields.choice("goal_kind", GOALS, required=True),
        "target": fields.matching("goal_target", AMOUNT, required=True),
        "category": scope.pop("category"),
        "partner_id": scope.pop("partner_id"),
    }
    if scope.pop("store_id") is not None:
        raise FormInvalid("store_id")  # a challenge's goal has no store
    body = {
        "name": fields.text("name", required=True),
        "goal": without_empty(goal),
        "badge": fields.text("badge"),
        "min_tier": fields.choice("min_tier", TIERS),
        "reward": reward_of(fields),
        **_window(fields, end_required=True),
        **scope,
    }
    return without_empty(body)


def surprise_body(form: Mapping[str, str]) -> dict[str, Any]:
    fields = Fields(form)
    body = {
        "name": fields.text("name", required=True),
        "chance": fields.matching("chance", CHANCE, required=True),
        "min_tier": fields.choice("min_tier", TIERS),
        "daily_budget": fields.whole("daily_budget", 1, 1_000_000_000),
        "cooldown_days": fields.whole("cooldown_days", 1, 3650),
        "reward": reward_of(fields),
        **_window(fields),
        **scope_of(fields),
    }
    if body["chance"] is not None and Decimal(body["chance"]) <= 0:
        raise FormInvalid("chance")
    return without_empty(body)


BODIES: dict[str, Callable[[Mapping[str, str]], dict[str, Any]]] = {
    "stamp-cards": stamp_card_body,
    "challenges": challenge_body,
    "surprises": surprise_body,
}


async def list_rules(services: Services, actor: str, kind: str) -> Listing:
    return listing_of(await services.get("engagement", f"/v1/{kind}", actor=actor))


async def create_rule(
    services: Services, actor: str, kind: str, form: Mapping[str, str], idempotency_key: str
) -> Outcome:
    try:
        body = BODIES[kind](form)
    except FormInvalid as error:
        return refused(error)
    answer = await services.send(
        "POST", "engagement", f"/v1/{kind}", actor=actor, body=body, idempotency_key=idempotency_key
    )
    return outcome_of(answer)


async def end_rule(services: Services, actor: str, kind: str, rule_id: str) -> Outcome:
    return outcome_of(
        await services.send("DELETE", "engagement", f"/v1/{kind}/{rule_id}", actor=actor)
    )
