"""Staff changes to a member: points given or taken (points' adjustments) and a tier override
(tiers), each sent with the Idempotency-Key the form was rendered with (a double submit changes
once) and the signed-in person as actor (the services record `console:staff:<name>`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from services.web.ports import Answer, Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What the page says after the change: `done` (a notice's message key) when made, else
    `problem` (an error's message key) and the page's status."""

    done: str | None = None
    problem: str | None = None
    status: int = 200


async def adjust_points(
    services: Services, actor: str, customer_id: str, *, points: int, reason: str, key: str
) -> Outcome:
    answer = await services.send(
        "POST",
        "points",
        f"/v1/customers/{customer_id}/adjustments",
        actor=actor,
        body={"points": points, "reason": reason},
        idempotency_key=key,
    )
    if answer.ok:
        return Outcome(done="console.adjusted")
    return _refused(answer, "console.adjust.refused", "console.adjust.invalid")


async def override_tier(
    services: Services,
    actor: str,
    customer_id: str,
    *,
    tier: str,
    reason: str,
    until: date | None,
    key: str,
) -> Outcome:
    """`until`: the day (from its UTC midnight) the override is reviewed; a year by default."""
    body: dict[str, str] = {"tier": tier, "reason": reason}
    if until is not None:
        body["until"] = datetime.combine(until, time(), tzinfo=UTC).isoformat()
    answer = await services.send(
        "POST",
        "tiers",
        f"/v1/customers/{customer_id}/tier",
        actor=actor,
        body=body,
        idempotency_key=key,
    )
    if answer.ok:
        return Outcome(done="console.overridden")
    return _refused(answer, "console.override.refused", "console.override.invalid")


def _refused(answer: Answer, conflict: str, invalid: str) -> Outcome:
    log.info("console change refused", extra={"status": answer.status})
    if answer.status == 404:
        return Outcome(problem="console.member.unknown", status=404)
    if answer.status == 409:
        return Outcome(problem=conflict, status=409)
    if answer.status == 422:
        return Outcome(problem=invalid, status=422)
    return Outcome(problem="console.change.failed", status=502)
