"""The problems the points routes document (`responses=problems(...)`)."""

from typing import Any

from shared.web.problems import PROBLEM_JSON

_MEANINGS = {
    400: "A malformed Idempotency-Key",
    401: "No or an unknown service token",
    403: "The call needs the admin scope",
    404: "Unknown customer or hold",
    409: (
        "Not enough available points, a hold settled otherwise already, "
        "or the Idempotency-Key was used for another request"
    ),
    422: "Invalid request",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"description": _MEANINGS[status], "content": {PROBLEM_JSON: {}}}
        for status in statuses
    }
