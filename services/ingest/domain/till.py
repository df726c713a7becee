"""What ingest makes of points' answers to a till's calls. Pure Python: no framework, no I/O.

A till (a partner's POS) never talks to points: ingest authenticates the partner, bounds the
call and relays it to points with the till token (`usecases/till.py`). Points' answer comes
back as it is — its status, its JSON body (problem+json too), `Retry-After` and
`Idempotent-Replayed` — unless it is something a till cannot act on: points' own failures
(5xx), an answer that is not JSON, or a refusal of ingest's own credentials (points
misconfigured). Those, and points not answering at all, become a problem of ingest's that
says what the till may do next: retry later (nothing was done), or retry with the same
Idempotency-Key (the outcome is unknown; points replays its first answer if it applied it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# A coupon code as a till reads it off a screen or a QR code: letters, digits, `-` and `_`.
# Bounded before it goes anywhere; a code is a bearer secret, so it is never logged.
COUPON_CODE_MIN_LENGTH = 4
COUPON_CODE_MAX_LENGTH = 64
COUPON_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]*$"

# A points answer larger than this is not relayed (502): a till's answers are small.
MAX_ANSWER_BYTES = 1024 * 1024

JSON_TYPES = ("application/json", "application/problem+json")
PROBLEM_JSON = "application/problem+json"
# Points' refusals of ingest's own token: relayed, they would tell the till that its
# credentials are wrong, when it is ingest's configuration that is.
_CREDENTIAL_SLUGS = frozenset({"unauthorized", "forbidden"})


@dataclass(frozen=True)
class PointsAnswer:
    """Points' HTTP answer as received (the gateway's port returns it)."""

    status: int
    content_type: str
    body: bytes = field(repr=False)
    retry_after: str | None = None
    replayed: str | None = None


@dataclass(frozen=True)
class Relayed:
    """What ingest answers the till: points' answer, passed on."""

    status: int
    media_type: str
    body: bytes = field(repr=False)
    headers: dict[str, str]


class TillFailure(Exception):
    """A till call that points did not answer usefully: ingest's own problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        slug: str,
        retry_after: int | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.slug = slug
        self.retry_after = retry_after
        self.extra = extra

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


def unreachable(retry_after: int) -> TillFailure:
    """Nothing reached points (refused, unknown host, connect timeout, no free connection):
    nothing was done, anywhere."""
    return TillFailure(
        503,
        "Points unavailable",
        "the points service cannot be reached right now; nothing was done: retry later "
        "(with the same Idempotency-Key)",
        slug="points-unavailable",
        retry_after=retry_after,
    )


def outcome_unknown(changes_state: bool, retry_after: int) -> TillFailure:
    """The call went to points and no answer came back. A read did nothing, so it is simply
    unavailable; a change may or may not have been applied."""
    if not changes_state:
        return unreachable(retry_after)
    return TillFailure(
        503,
        "Outcome unknown",
        "the points service did not answer in time: the call may or may not have been "
        "applied. Retry it with the same Idempotency-Key and body: the first answer comes "
        "back if it was applied, and it is applied once if it was not",
        slug="points-outcome-unknown",
        retry_after=retry_after,
    )


def not_configured() -> TillFailure:
    return TillFailure(
        503,
        "Till calls unavailable",
        "this ingest is not configured to reach the points service "
        "(FEDELTA_INGEST_POINTS_TOKEN is unset); nothing was done",
        slug="till-not-configured",
    )


def key_required() -> TillFailure:
    return TillFailure(
        428,
        "Idempotency-Key required",
        "a call that spends or reserves points must carry an Idempotency-Key header (a new "
        "random one per call, e.g. a UUID): when the answer is lost, the till retries with "
        "the same key and the points are spent once",
        slug="idempotency-key-required",
    )


def relayed(answer: PointsAnswer, *, retry_after: int) -> Relayed:
    """Points' answer for the till, or the TillFailure that replaces it."""
    if answer.status >= 500:
        raise _points_failed(answer, retry_after)
    media_type = answer.content_type.split(";", 1)[0].strip().lower()
    if (
        media_type not in JSON_TYPES
        or len(answer.body) > MAX_ANSWER_BYTES
        or not _is_json(answer.body)
    ):
        raise _bad_answer(answer.status)
    if answer.status in (401, 403) and _slug(answer.body) in _CREDENTIAL_SLUGS:
        raise TillFailure(
            502,
            "Points refused ingest",
            "the points service refused ingest's own credentials (its till token): a "
            "configuration error on the platform's side, not the till's; nothing was done",
            slug="points-misconfigured",
        )
    headers: dict[str, str] = {}
    if answer.retry_after is not None:
        headers["Retry-After"] = answer.retry_after
    if answer.replayed is not None:
        headers["Idempotent-Replayed"] = answer.replayed
    return Relayed(answer.status, media_type, answer.body, headers)


def _points_failed(answer: PointsAnswer, retry_after: int) -> TillFailure:
    if answer.status == 503:
        # Points says it is away (its database, a restart): nothing was applied.
        return TillFailure(
            503,
            "Points unavailable",
            "the points service is unavailable right now; nothing was done: retry later "
            "with the same Idempotency-Key",
            slug="points-unavailable",
            retry_after=_seconds(answer.retry_after) or retry_after,
        )
    return TillFailure(
        502,
        "Points failed",
        f"the points service failed on this call (HTTP {answer.status}): retry it with the "
        "same Idempotency-Key; if it had been applied, the first answer comes back",
        slug="points-failed",
        retry_after=retry_after,
        points_status=answer.status,
    )


def _bad_answer(status: int) -> TillFailure:
    return TillFailure(
        502,
        "Bad answer from points",
        f"the points service answered HTTP {status} with a body that is not a JSON document "
        "ingest can pass on: retry it with the same Idempotency-Key",
        slug="points-bad-answer",
        points_status=status,
    )


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:  # not UTF-8, or not JSON
        return False
    return True


def _slug(body: bytes) -> str | None:
    document = json.loads(body)
    if not isinstance(document, dict):
        return None
    kind = document.get("type")
    if not isinstance(kind, str):
        return None
    return kind.rpartition(":")[2]


def _seconds(value: str | None) -> int | None:
    """A Retry-After in whole seconds, when it is one (within an hour)."""
    if value is None or not value.isdigit() or len(value) > 4:
        return None
    seconds = int(value)
    return seconds if 0 < seconds <= 3600 else None
