"""What a call answers: `Accepted` for a state change ingest took, and the errors a caller
tells apart (`Refused`: the request is wrong and retrying it will not help; `Unavailable`: no
definite answer came, and the same call with the same Idempotency-Key may be tried later)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

REPLAYED_HEADER = "Idempotent-Replayed"


@dataclass(frozen=True)
class Accepted:
    """Ingest stored the call and its event (202): it will reach every service.

    `replayed` is true when this is the first answer again, given to a retry with the same
    Idempotency-Key; `idempotency_key` is the key the call was sent with (keep it to retry the
    same call later)."""

    event_id: str
    idempotency_key: str
    status_code: int = 202
    replayed: bool = False

    @classmethod
    def of(cls, response: httpx.Response, idempotency_key: str) -> Accepted:
        return cls(
            event_id=str(response.json()["event_id"]),
            idempotency_key=idempotency_key,
            status_code=response.status_code,
            replayed=response.headers.get(REPLAYED_HEADER) == "true",
        )


class FedeltaError(Exception):
    """Every error this package raises."""


class Refused(FedeltaError):
    """A 4xx answer (RFC 9457 problem+json): the call changed nothing; fix it, do not retry it
    as is. `str()` reads `HTTP <status>: <detail>`."""

    def __init__(self, status_code: int, problem: dict[str, Any] | None) -> None:
        self.status_code = status_code
        self.problem = problem or {}
        self.detail: str | None = str(self.problem["detail"]) if "detail" in self.problem else None
        super().__init__(
            f"HTTP {status_code}: {self.detail}" if self.detail else f"HTTP {status_code}"
        )

    @classmethod
    def of(cls, response: httpx.Response) -> Refused:
        return cls(response.status_code, problem_of(response))


class Unavailable(FedeltaError):
    """No definite answer after every attempt (connection errors, 5xx, 429): the call may or may
    not have been applied; sending it again with the same Idempotency-Key tells which."""

    def __init__(self, message: str, *, idempotency_key: str | None = None) -> None:
        super().__init__(message)
        self.idempotency_key = idempotency_key


def problem_of(response: httpx.Response) -> dict[str, Any] | None:
    """The problem+json body of an error answer, if it has one."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def raise_for_answer(response: httpx.Response) -> None:
    """Refused for a 4xx, Unavailable for anything else that is not a success."""
    if 400 <= response.status_code < 500:
        raise Refused.of(response)
    if response.status_code >= 300:
        problem = problem_of(response) or {}
        detail = f": {problem['detail']}" if "detail" in problem else ""
        raise Unavailable(f"HTTP {response.status_code}{detail}")


def json_object(response: httpx.Response) -> dict[str, Any]:
    """A successful answer's JSON object; Refused or Unavailable otherwise."""
    raise_for_answer(response)
    body: dict[str, Any] = response.json()
    return body
