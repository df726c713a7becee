"""The settlement report in the console (points `GET /v1/reports/settlement?from=&to=`): what
each partner owes and is owed for points issued by one and honoured by another."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.web.ports import Services
from services.web.usecases.campaigns import Fields, FormInvalid, Outcome, outcome_of, refused


@dataclass(frozen=True)
class Settlement:
    outcome: Outcome | None = None  # None: no period asked yet
    report: Mapping[str, Any] = field(default_factory=dict)


async def settlement_report(
    services: Services, actor: str, start: str | None, end: str | None
) -> Settlement:
    if not start and not end:
        return Settlement()
    fields = Fields({"from": start or "", "to": end or ""})
    try:
        params = {
            "from": fields.instant("from", required=True),
            "to": fields.instant("to", required=True),
        }
    except FormInvalid as error:
        return Settlement(refused(error))
    answer = await services.get(
        "points",
        "/v1/reports/settlement",
        actor=actor,
        params={k: str(v) for k, v in params.items()},
    )
    outcome = outcome_of(answer)
    report = outcome.body if outcome.ok and isinstance(outcome.body, Mapping) else {}
    return Settlement(outcome, report)
