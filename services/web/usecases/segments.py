"""Segments in the console (insights `GET/POST /v1/segments`, `DELETE /v1/segments/{name}`, and a
segment's members a page at a time). A custom segment is made from criteria the form bounds as
insights does; its members follow at the next run of insights' `segments` job."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from services.web.ports import Services
from services.web.usecases.campaigns import (
    SEGMENT,
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

CUSTOM_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
CURSOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")
STAGES = ("new", "active", "at_risk", "lapsed", "won_back")
LOYALTY_TYPES = ("happy", "price", "program", "convenience", "perks", "truly_loyal")
AMOUNT = re.compile(r"^[0-9]{1,6}(\.[0-9]{1,2})?$")
PAGE = 50


async def list_segments(services: Services, actor: str) -> Listing:
    return listing_of(await services.get("insights", "/v1/segments", actor=actor))


def _chosen(values: Sequence[str], allowed: tuple[str, ...], name: str) -> list[str]:
    if any(value not in allowed for value in values):
        raise FormInvalid(name)
    return sorted(set(values), key=allowed.index)


def segment_body(form: Mapping[str, str], choices: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """`choices`: the form's multiple selects (lifecycle, loyalty_types, tiers)."""
    fields = Fields(form)
    criteria = {
        "lifecycle": _chosen(choices.get("lifecycle", ()), STAGES, "lifecycle"),
        "loyalty_types": _chosen(choices.get("loyalty_types", ()), LOYALTY_TYPES, "loyalty_types"),
        "tiers": _chosen(choices.get("tiers", ()), TIERS, "tiers"),
        "min_r": fields.whole("min_r", 1, 5),
        "min_f": fields.whole("min_f", 1, 5),
        "min_m": fields.whole("min_m", 1, 5),
        "max_recency_days": fields.whole("max_recency_days", 0, 3650),
        "min_frequency": fields.whole("min_frequency", 0, 1_000_000),
        "min_monetary": fields.matching("min_monetary", AMOUNT),
    }
    criteria = {name: value for name, value in without_empty(criteria).items() if value != []}
    if not criteria:
        raise FormInvalid("lifecycle", "program.segment.criteria")
    return without_empty(
        {
            "name": fields.matching("name", CUSTOM_NAME, required=True),
            "description": fields.text("description"),
            "criteria": criteria,
        }
    )


async def create_segment(
    services: Services,
    actor: str,
    form: Mapping[str, str],
    choices: Mapping[str, Sequence[str]],
    idempotency_key: str,
) -> Outcome:
    try:
        body = segment_body(form, choices)
    except FormInvalid as error:
        return refused(error)
    answer = await services.send(
        "POST", "insights", "/v1/segments", actor=actor, body=body, idempotency_key=idempotency_key
    )
    return outcome_of(answer)


async def delete_segment(services: Services, actor: str, name: str) -> Outcome:
    if not CUSTOM_NAME.fullmatch(name):
        return Outcome(404, detail=None, message_key="program.segment.not_custom", field="name")
    return outcome_of(
        await services.send("DELETE", "insights", f"/v1/segments/{name}", actor=actor)
    )


async def segment_members(
    services: Services, actor: str, name: str, cursor: str | None
) -> tuple[Outcome, Listing]:
    """The segment (its description and size) and one page of its members."""
    if not SEGMENT.fullmatch(name) or (cursor is not None and not CURSOR.fullmatch(cursor)):
        return Outcome(404, message_key="error.not_found"), Listing()
    segment = outcome_of(await services.get("insights", f"/v1/segments/{name}", actor=actor))
    if not segment.ok:
        return segment, Listing()
    params = {"limit": str(PAGE), **({"cursor": cursor} if cursor else {})}
    members = await services.get(
        "insights", f"/v1/segments/{name}/members", actor=actor, params=params
    )
    return segment, listing_of(members)
