"""Answers shared by the routers: retries of accepted calls, and refusals by the rules."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest.adapters import tables
from services.ingest.api.schemas import AcceptedOut
from services.ingest.domain.model import Accepted, RefundTooLarge, RuleViolation, is_retry
from shared.clock import Clock
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import Outbox
from shared.web.idempotency import IdempotentCall
from shared.web.problems import PROBLEM_JSON, Problem, problem_response

_MEANINGS = {
    401: "Unknown or inactive API key, or a missing, stale or wrong signature",
    403: "The customer was enrolled by another partner: only the enrolling partner may change it",
    404: "Unknown customer",
    409: "The id was already used for a call with another body",
    422: "Invalid request, or refused by the program's rules",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers of an operation, for its OpenAPI description."""
    return {
        status: {"description": _MEANINGS[status], "content": {PROBLEM_JSON: {}}}
        for status in statuses
    }


def replay_or_conflict(
    previous: Accepted, current_hash: str, *, what: str, hint: str
) -> AcceptedOut:
    """The first answer again for a retry; a 409 when the id is reused for another call."""
    if is_retry(previous, current_hash):
        return AcceptedOut(event_id=previous.event_id)
    raise Problem(
        409,
        "Conflict",
        f"{what} was already accepted with a different body; {hint}",
        slug="idempotency-conflict",
    )


async def accept(
    conn: AsyncConnection,
    event: CloudEvent,
    *,
    customer_id: str,
    call: IdempotentCall,
    clock: Clock,
) -> AcceptedOut:
    """What accepting a POS call means, in the call's own transaction: its event goes to the
    outbox (keyed by customer) and its answer is kept for retries under the same key."""
    await Outbox(conn, tables.outbox, clock).add(event, key=customer_id)
    answer = AcceptedOut(event_id=event.id)
    await call.remember(conn, tables.idempotency_keys, 202, answer, clock.now())
    return answer


def install_rule_violation_handler(app: FastAPI) -> None:
    async def on_rule_violation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RuleViolation)
        extra: dict[str, Any] = {}
        if isinstance(exc, RefundTooLarge):
            extra["remaining"] = str(exc.remaining)
        return problem_response(422, "Refused by the rules", str(exc), slug=exc.slug, **extra)

    app.add_exception_handler(RuleViolation, on_rule_violation)
