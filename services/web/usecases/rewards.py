"""The rewards catalogue in the console (points `GET/POST /v1/rewards`, `PATCH/DELETE
/v1/rewards/{id}`): a reward's cost, stock and window change while it runs; DELETE retires it."""

from __future__ import annotations

import re
from collections.abc import Mapping
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
    without_empty,
)

KINDS = ("coupon", "item", "discount")
VALUE = re.compile(r"^[0-9]{1,10}(\.[0-9]{1,2})?$")
MAX_POINTS = 2**31 - 1


async def list_rewards(services: Services, actor: str) -> Listing:
    return listing_of(await services.get("points", "/v1/rewards", actor=actor))


def reward_body(form: Mapping[str, str]) -> dict[str, Any]:
    fields = Fields(form)
    return without_empty(
        {
            "name": fields.text("name", required=True),
            "points_cost": fields.whole("points_cost", 1, MAX_POINTS, required=True),
            "kind": fields.choice("kind", KINDS, required=True),
            "value": fields.matching("value", VALUE),
            "partner_id": fields.matching("partner_id", IDENTIFIER),
            "min_tier": fields.choice("min_tier", TIERS),
            "stock": fields.whole("stock", 0, MAX_POINTS),
            "per_customer_limit": fields.whole("per_customer_limit", 1, 1_000_000),
            "starts_at": fields.instant("starts_at"),
            "ends_at": fields.instant("ends_at"),
            "coupon_validity_days": fields.whole("coupon_validity_days", 1, 3650),
            "description": fields.text("description"),
        }
    )


def reward_patch(form: Mapping[str, str]) -> dict[str, Any]:
    """Only the fields given change (an empty field leaves its value as it is)."""
    fields = Fields(form)
    patch = without_empty(
        {
            "points_cost": fields.whole("points_cost", 1, MAX_POINTS),
            "stock": fields.whole("stock", 0, MAX_POINTS),
            "ends_at": fields.instant("ends_at"),
        }
    )
    if not patch:
        raise FormInvalid("points_cost", "program.nothing_to_change")
    return patch


async def create_reward(
    services: Services, actor: str, form: Mapping[str, str], idempotency_key: str
) -> Outcome:
    try:
        body = reward_body(form)
    except FormInvalid as error:
        return refused(error)
    answer = await services.send(
        "POST", "points", "/v1/rewards", actor=actor, body=body, idempotency_key=idempotency_key
    )
    return outcome_of(answer)


async def change_reward(
    services: Services, actor: str, reward_id: str, form: Mapping[str, str], idempotency_key: str
) -> Outcome:
    try:
        patch = reward_patch(form)
    except FormInvalid as error:
        return refused(error)
    answer = await services.send(
        "PATCH",
        "points",
        f"/v1/rewards/{reward_id}",
        actor=actor,
        body=patch,
        idempotency_key=idempotency_key,
    )
    return outcome_of(answer)


async def retire_reward(
    services: Services, actor: str, reward_id: str, idempotency_key: str
) -> Outcome:
    answer = await services.send(
        "DELETE",
        "points",
        f"/v1/rewards/{reward_id}",
        actor=actor,
        idempotency_key=idempotency_key,
    )
    return outcome_of(answer)
