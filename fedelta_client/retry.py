"""When a state-changing call is sent again, always with the same Idempotency-Key (and the
same body), so that it takes effect at most once:

- a connection error or a timeout (the call may or may not have arrived): retried;
- 503 with `Retry-After` (the service's database is away) and 429 (too many requests):
  retried after what `Retry-After` says (capped), else after the backoff;
- any other answer, 4xx included, is final: a refused call changed nothing, and sending it
  again unchanged would be refused again.

Between attempts the wait doubles from `backoff_s` up to `max_backoff_s`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # in all, the first included; 1 never retries
    backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    max_retry_after_s: float = 30.0  # a longer Retry-After is waited only this long
    sleep: Sleep = asyncio.sleep

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number `attempt` (1, 2, ...)."""
        return float(min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s))

    def delay_after(self, response: httpx.Response, attempt: int) -> float | None:
        """How long to wait before sending again after `response`, or None when it is final."""
        status = response.status_code
        retry_after = response.headers.get("Retry-After")
        if status == 429 or (status == 503 and retry_after is not None):
            seconds = _seconds(retry_after)
            if seconds is None:
                return self.backoff(attempt)
            return min(seconds, self.max_retry_after_s)
        return None


NO_RETRIES = RetryPolicy(attempts=1)


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is not used by Fedelta: backoff instead)."""
    if retry_after is None:
        return None
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        return None
