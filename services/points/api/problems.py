"""The problems the points routes document (`responses=problems(...)`)."""

from typing import Any

from shared.web.problems import PROBLEM_JSON

_MEANINGS = {
    400: (
        "A malformed Idempotency-Key, or a till call without a valid Fedelta-Partner-Id "
        "(or with a malformed Fedelta-Store-Id)"
    ),
    401: "No or an unknown service token",
    403: (
        "The call needs the admin scope (the till scope opens only the till's calls), or "
        "the coupon's reward is honoured by another partner"
    ),
    404: "Unknown customer, hold, reward or coupon",
    409: (
        "Not enough available points, a reward not redeemable now, a coupon used already, "
        "a hold settled otherwise already, or the Idempotency-Key was used for another request"
    ),
    410: "The coupon expired",
    422: "Invalid request",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"description": _MEANINGS[status], "content": {PROBLEM_JSON: {}}}
        for status in statuses
    }
