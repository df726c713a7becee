"""Per-partner rate limits (issue 19): a token bucket per partner in each ingest worker
process, kept in memory (no database round trip on a call).

A partner's limit is its record's `rate_limit_per_second`, or the default from settings
(`FEDELTA_INGEST_PARTNER_RATE_LIMIT_PER_SECOND`); it is the whole instance's, divided evenly
among its worker processes (each process has its own buckets, and the server spreads
connections across them). A bucket holds one second's worth of its rate (at least one call):
a partner may send a burst of that size, then its rate. A call past it is refused with a 429
whose `Retry-After` says when the bucket will have a token again (whole seconds, at least 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

# Partners whose buckets are kept at most (the least recently used forgotten first): a
# forgotten bucket starts full again, which only a partner idle for a while can gain from.
MAX_BUCKETS = 10_000


@dataclass
class TokenBucket:
    rate: float  # tokens per second
    tokens: float
    refilled: datetime

    @property
    def capacity(self) -> float:
        return max(self.rate, 1.0)

    def take(self, now: datetime) -> float:
        """Takes one token: 0.0 when there was one, else the seconds until there will be (and
        nothing is taken)."""
        elapsed = max((now - self.refilled).total_seconds(), 0.0)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.refilled = max(now, self.refilled)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


def retry_after_seconds(wait: float) -> int:
    """What `Retry-After` says for a wait: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait))


class PartnerRateLimits:
    """The buckets of one worker process."""

    def __init__(self, default_per_second: float, processes: int) -> None:
        if default_per_second <= 0 or processes < 1:
            raise ValueError("a rate limit is positive and shared by one process or more")
        self._default = default_per_second
        self._processes = processes
        self._buckets: dict[str, TokenBucket] = {}

    def per_process(self, limit_per_second: float | None) -> float:
        """This process's share of a partner's limit (the default when it has none)."""
        return (limit_per_second or self._default) / self._processes

    def take(self, partner_id: str, limit_per_second: float | None, now: datetime) -> float:
        """One call of the partner: 0.0 when admitted, else the seconds to wait."""
        rate = self.per_process(limit_per_second)
        bucket = self._buckets.pop(partner_id, None)
        if bucket is None:
            bucket = TokenBucket(rate=rate, tokens=max(rate, 1.0), refilled=now)
        elif bucket.rate != rate:  # the partner's limit changed: the new one from now on
            bucket.tokens = min(bucket.tokens, max(rate, 1.0))
            bucket.rate = rate
        while len(self._buckets) >= MAX_BUCKETS:
            del self._buckets[next(iter(self._buckets))]  # the least recently used
        self._buckets[partner_id] = bucket  # re-inserted: the most recently used
        return bucket.take(now)
