"""The error answers the routers share: how they are documented, and refusals by the rules.

(What an accepted call answers is the use cases' business: `usecases/answers.py`.)"""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.ingest.domain.model import RefundTooLarge, RuleViolation
from services.ingest.domain.till import TillFailure
from shared.web.problems import PROBLEM_JSON, problem_response

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


def install_rule_violation_handler(app: FastAPI) -> None:
    async def on_rule_violation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RuleViolation)
        extra: dict[str, Any] = {}
        if isinstance(exc, RefundTooLarge):
            extra["remaining"] = str(exc.remaining)
        return problem_response(422, "Refused by the rules", str(exc), slug=exc.slug, **extra)

    app.add_exception_handler(RuleViolation, on_rule_violation)


def install_till_failure_handler(app: FastAPI) -> None:
    """A till call points did not answer usefully (`domain/till.py`): ingest's own problem,
    with `Retry-After` when the till should wait before it retries."""

    async def on_till_failure(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TillFailure)
        return problem_response(
            exc.status, exc.title, exc.detail, slug=exc.slug, headers=exc.headers, **exc.extra
        )

    app.add_exception_handler(TillFailure, on_till_failure)
